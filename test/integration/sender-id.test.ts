/**
 * 'sender-id' in both directions: the server dialled for peer X must present a
 * certificate naming X before any frame is written, per message and pooled,
 * with resumed sessions; pooled connections and cached sessions are per peer id.
 */
import { expect } from 'chai';
import { HOST, TcpTransport, closeAll, codeOf, listening, pem, ca, record, sleep, track, until } from '../support/helpers';

const senderId = (policy: unknown = 'sender-id', extra: Record<string, unknown> = {}): TcpTransport =>
  track(new TcpTransport({ host: HOST, port: 0, ...extra, tls: { ...pem('peer-2'), ca: ca(), requestCert: true, authorize: policy as 'sender-id' } }));

/** remotePeer for id `id` at `t`'s address. */
const at = (t: TcpTransport, id?: string): { id?: string; transport: { host: string; port: number } } =>
  ({ ...(id === undefined ? {} : { id }), transport: { host: HOST, port: t.port } });

for (const keepAlive of [false, true]) {
  describe(`outbound 'sender-id' [${keepAlive ? 'keepAlive' : 'per message'}]`, () => {
    afterEach(closeAll);

    it('refuses a server whose certificate does not name the peer id sent to: nothing written, ERR_PEER_UNAUTHORIZED with the count', async () => {
      // The attack: a member holding peer-1's certificate answers at the address
      // gossip was told belongs to peer-3.
      const impostor = await listening('mtls', {}, 'peer-1');
      const seen = record(impostor);
      const sender = senderId('sender-id', { keepAlive });
      const errors = record(sender).errors;
      for (let i = 0; i < 3; i++) sender.digest(at(impostor, 'peer-3'), { id: 'peer-2' }, []);
      await until(() => errors.length === (keepAlive ? 1 : 3), undefined, 'refusals');
      await sleep(30);
      expect(errors.map(codeOf)).to.deep.equal(Array(keepAlive ? 1 : 3).fill('ERR_PEER_UNAUTHORIZED'));
      expect(errors[0]).to.include({ expectedId: 'peer-3', remoteAddress: HOST, remotePort: impostor.port });
      expect(errors.reduce((n, e) => n + (e as unknown as { framesDropped: number }).framesDropped, 0)).to.equal(3);
      expect(sender.stats().frames.out, 'no frame is written before the check').to.equal(0);
      expect(seen.digests).to.have.length(0);
    });

    it('delivers to a server whose certificate names the peer id (CN or SAN URI), resuming its session on the next connection, checked both ways', async () => {
      // The receiver checks 'sender-id' too: on the server side a resumed session keeps the client certificate.
      const receiver = await listening('mtls', { tls: { ...pem('peer-1'), ca: ca(), requestCert: true, authorize: 'sender-id' } }, 'peer-1');
      const seen = record(receiver);
      const sender = senderId('sender-id', { keepAlive: keepAlive ? { idleTimeout: 50 } : false });
      const errors = record(sender).errors;
      sender.digest(at(receiver, 'peer-1'), { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 1);
      if (keepAlive) await until(() => receiver.stats().connections.open === 0, undefined, 'the pooled connection to idle out');
      else await sleep(30);
      // A resumed TLS 1.3 session has no peer certificate subject; the identity
      // checked when the session was made travels with it.
      sender.digest(at(receiver, 'peer-1'), { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 2);
      sender.digest(at(receiver, 'spiffe://gossipmonger.test/peer-1'), { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 3);
      expect(errors).to.deep.equal([]);
      expect(seen.errors).to.deep.equal([]);
      expect(sender.stats().connections.resumed).to.be.at.least(1);
    });

    it('never lends a session or a connection verified for one id to another id at the same address', async () => {
      const receiver = await listening('mtls', {}, 'peer-1');
      const seen = record(receiver);
      const sender = senderId('sender-id', { keepAlive });
      const errors = record(sender).errors;
      sender.digest(at(receiver, 'peer-1'), { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 1);
      await sleep(30);
      sender.digest(at(receiver, 'peer-4'), { id: 'peer-2' }, []);
      await until(() => errors.length === 1);
      expect(codeOf(errors[0])).to.equal('ERR_PEER_UNAUTHORIZED');
      expect(errors[0]).to.have.property('expectedId', 'peer-4');
      await sleep(30);
      expect(seen.digests).to.have.length(1);
    });

    it('refuses a remotePeer without an id, opening no connection', async () => {
      const receiver = await listening('mtls', {}, 'peer-1');
      const sender = senderId('sender-id', { keepAlive });
      const errors = record(sender).errors;
      sender.digest(at(receiver), { id: 'peer-2' }, []);
      await until(() => errors.length === 1);
      expect(codeOf(errors[0])).to.equal('ERR_PEER_UNAUTHORIZED');
      await sleep(30);
      expect(receiver.stats().connections.accepted).to.equal(0);
      expect(sender.stats().connections.outbound).to.equal(0);
    });

    it('asks a function policy once per connection with direction outbound, the remote peer and the server certificate', async () => {
      const receiver = await listening('mtls', {}, 'peer-1');
      const seen = record(receiver);
      const calls: Array<[string, string, string | undefined]> = [];
      const policy = (peer: { id: string }, cert: { subject?: { CN?: string } } | undefined, context: { direction: string }): boolean => {
        calls.push([context.direction, peer.id, cert?.subject?.CN]);
        return context.direction === 'inbound' || peer.id === cert?.subject?.CN;
      };
      const sender = senderId(policy, { keepAlive });
      const errors = record(sender).errors;
      sender.digest(at(receiver, 'peer-1'), { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 1);
      sender.digest(at(receiver, 'peer-5'), { id: 'peer-2' }, []);
      await until(() => errors.length === 1);
      expect(codeOf(errors[0])).to.equal('ERR_PEER_UNAUTHORIZED');
      expect(calls).to.deep.include(['outbound', 'peer-1', 'peer-1']);
      expect(calls).to.deep.include(['outbound', 'peer-5', 'peer-1']);
      expect(calls.every(([direction]) => direction === 'outbound')).to.equal(true);
    });
  });
}

describe("'sender-id' both ways between two transports", () => {
  afterEach(closeAll);

  it('a peer replies only to the certificate that names the id it replies to', async () => {
    const a = await listening('mtls', { tls: { ...pem('peer-1'), ca: ca(), requestCert: true, authorize: 'sender-id' } }, 'peer-1');
    const b = await listening('mtls', { tls: { ...pem('peer-2'), ca: ca(), requestCert: true, authorize: 'sender-id' } }, 'peer-2');
    const seenA = record(a);
    const seenB = record(b);
    a.digest(at(b, 'peer-2'), { id: 'peer-1' }, []);
    b.digest(at(a, 'peer-1'), { id: 'peer-2' }, []);
    await until(() => seenA.digests.length === 1 && seenB.digests.length === 1);
    // b claims to be peer-3 in its advertised address book: a refuses to send there.
    a.digest(at(b, 'peer-3'), { id: 'peer-1' }, []);
    await until(() => seenA.errors.length === 1);
    expect(codeOf(seenA.errors[0])).to.equal('ERR_PEER_UNAUTHORIZED');
    expect(seenB.digests).to.have.length(1);
  });
});

describe('stats().certificates', () => {
  afterEach(closeAll);

  it("reports this transport's certificate expiry and the soonest-expiring peer certificate seen, both ways", async () => {
    const { X509Certificate } = await import('node:crypto');
    const expiry = (peer: string): number => Date.parse(new X509Certificate(pem(peer).cert).validTo);
    const receiver = await listening('mtls', {}, 'peer-1');
    const seen = record(receiver);
    const sender = senderId('any');
    expect(sender.stats().certificates).to.deep.equal({ expires: expiry('peer-2'), peerSoonest: undefined });
    sender.digest(at(receiver, 'peer-1'), { id: 'peer-2' }, []);
    await until(() => seen.digests.length === 1);
    expect(receiver.stats().certificates.expires).to.equal(expiry('peer-1'));
    expect(receiver.stats().certificates.peerSoonest).to.include({ subject: 'peer-2', expires: expiry('peer-2') });
    expect(sender.stats().certificates.peerSoonest).to.include({ subject: 'peer-1', expires: expiry('peer-1') });
    expect(new TcpTransport({ host: HOST, port: 0 }).stats().certificates).to.deep.equal({ expires: undefined, peerSoonest: undefined });
  });
});
