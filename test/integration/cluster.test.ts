/**
 * options.cluster: clusters that share a CA stay apart, refused in the TLS
 * handshake through ALPN.
 */
import { expect } from 'chai';
import { ca, closeAll, codeOf, listening, peerAt, pem, record, sleep, tlsClientSends, tlsFor, track, transport, until } from '../support/helpers';

describe('cluster isolation (options.cluster)', () => {
  afterEach(closeAll);

  it('delivers between peers of the same cluster', async () => {
    const receiver = await listening('mtls', { cluster: 'blue' });
    const seen = record(receiver);
    const sender = track(transport('mtls', { cluster: 'blue' }, 'peer-2'));
    const errors = record(sender).errors;
    sender.digest(peerAt(receiver), { id: 'blue-peer' }, []);
    await until(() => seen.digests.length === 1);
    expect(errors).to.deep.equal([]);
  });

  it('refuses a peer of another cluster in the handshake, on both sides, with no event', async () => {
    const receiver = await listening('mtls', { cluster: 'blue' });
    const seen = record(receiver);
    const sender = track(transport('mtls', { cluster: 'green' }, 'peer-2'));
    const errors = record(sender).errors;
    sender.digest(peerAt(receiver), { id: 'green-peer' }, []);
    await until(() => errors.length === 1 && seen.errors.length === 1);
    expect(codeOf(errors[0])).to.equal('ERR_CLUSTER_MISMATCH');
    expect(codeOf(seen.errors[0])).to.equal('ERR_CLUSTER_MISMATCH');
    expect(sender.stats().frames.out).to.equal(0);
    await sleep(20);
    expect(seen.digests).to.have.length(0);
  });

  it('closes a client that offers no ALPN at all before reading its frame', async () => {
    const receiver = await listening('tls', { cluster: 'blue' });
    const seen = record(receiver);
    await tlsClientSends(receiver.port, { ca: ca(), ...pem('peer-2') }, 'no-alpn');
    await until(() => seen.errors.length === 1);
    expect(codeOf(seen.errors[0])).to.equal('ERR_CLUSTER_MISMATCH');
    expect(seen.digests).to.have.length(0);
  });

  it('refuses to send to a server that negotiates no cluster', async () => {
    const receiver = await listening('tls');
    const seen = record(receiver);
    const sender = track(transport('tls', { cluster: 'blue', tls: tlsFor('tls', 'peer-2') }));
    const errors = record(sender).errors;
    sender.digest(peerAt(receiver), { id: 'x' }, []);
    await until(() => errors.length === 1);
    expect(codeOf(errors[0])).to.equal('ERR_CLUSTER_MISMATCH');
    await sleep(20);
    expect(seen.digests).to.have.length(0);
  });
});
