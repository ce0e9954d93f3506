/**
 * Errors name the peer they are about (address, port, and the gossipmonger id
 * when the transport knows it), Node's errors included; and a node configured
 * for the wrong protocol is told so, on both sides.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import { HOST, closeAll, codeOf, listening, peerAt, rawClient, record, tlsFor, track, transport, until } from '../support/helpers';

interface RemoteError extends Error {
  code?: string;
  remoteAddress?: string;
  remotePort?: number;
  peerId?: string;
}

describe('errors about a remote', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await closeAll();
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  /**
   * A TCP server that drops every connection: at once with a reset (a listener
   * at its cap does this), or with a clean close after reading the first bytes.
   */
  async function dropper (how: 'reset' | 'close' = 'reset'): Promise<number> {
    const server = createServer((socket) => {
      if (how === 'reset') socket.destroy();
      else socket.once('data', () => socket.end());
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    return (server.address() as { port: number }).port;
  }

  for (const [what, serverPeer, code] of [
    ['a certificate that does not name the host', 'wrong-name-peer', 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['a certificate from an unknown CA', 'rogue-peer', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['an expired certificate', 'expired-peer', 'CERT_HAS_EXPIRED']
  ] as const) {
    it(`puts address, port and peer id on Node's ${code} (${what})`, async () => {
      const receiver = await listening('tls', {}, serverPeer);
      record(receiver);
      const sender = track(transport('tls'));
      const seen = record(sender);
      sender.digest(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
      await until(() => seen.errors.length === 1);
      const error = seen.errors[0] as RemoteError;
      expect(error.code).to.equal(code);
      expect(error).to.include({ remoteAddress: HOST, remotePort: receiver.port, peerId: 'node-b' });
    });
  }

  it('puts the remote on errors of pooled (keepAlive) connections too', async () => {
    const port = await dropper();
    const sender = track(transport('tls', { keepAlive: true }));
    const seen = record(sender);
    sender.digest({ id: 'node-b', transport: { host: HOST, port } }, { id: 'node-a' }, []);
    await until(() => seen.errors.length === 1);
    expect(seen.errors[0]).to.include({ code: 'ERR_CONNECTION_CLOSED', remoteAddress: HOST, remotePort: port, peerId: 'node-b' });
  });

  it('puts the remote on an outbound frame that is too large', async () => {
    const sender = track(transport('plain', { maxFrameSize: 10 }));
    const seen = record(sender);
    sender.digest(peerAt({ port: 9 }, 'node-b'), { id: 'node-a' }, []);
    await until(() => seen.errors.length === 1);
    expect(seen.errors[0]).to.include({ code: 'ERR_FRAME_TOO_LARGE', remoteAddress: HOST, remotePort: 9, peerId: 'node-b' });
  });

  it('inbound, names the peer id once a message has proved it under \'sender-id\', and not otherwise', async () => {
    for (const authorize of ['sender-id', 'any'] as const) {
      const receiver = await listening('mtls', { tls: tlsFor('mtls', 'peer-1', { authorize }) });
      const inbound = record(receiver);
      const client = await rawClient('mtls', receiver.port, 'peer-2');
      client.write(JSON.stringify({ digest: [], sender: { id: 'peer-2' } }) + '\n');
      await until(() => inbound.digests.length === 1);
      client.end('not json\n');
      await until(() => inbound.errors.length === 1);
      const error = inbound.errors[0] as RemoteError;
      expect(error.code, authorize).to.equal('ERR_INVALID_MESSAGE');
      expect(error.remoteAddress, authorize).to.match(/127\.0\.0\.1/);
      expect(error.peerId, authorize).to.equal(authorize === 'sender-id' ? 'peer-2' : undefined);
    }
  });

  it('stats().refusals counts only admission refusals; failed handshakes and bad frames are in stats().errors', async () => {
    const receiver = await listening('mtls');
    const inbound = record(receiver);
    const stranger = track(transport('tls', { tls: tlsFor('tls', 'rogue-peer') }));
    record(stranger);
    stranger.digest(peerAt(receiver), { id: 'stranger' }, []);
    const plain = track(transport('plain'));
    record(plain);
    plain.digest(peerAt(receiver), { id: 'plain' }, []);
    await until(() => inbound.errors.length === 2);
    const stats = receiver.stats();
    expect(stats.errors).to.deep.equal({ ERR_TLS_HANDSHAKE: 1, ERR_PLAINTEXT_REFUSED: 1 });
    expect(stats.refusals).to.deep.equal({});
    expect(stats.connections.refused).to.equal(0);
  });

  describe('a TLS node and a plain node', () => {
    it('the plain receiver recognises the ClientHello (ERR_PROTOCOL_MISMATCH); the TLS sender is told the remote does not speak TLS', async () => {
      const receiver = await listening('plain');
      const inbound = record(receiver);
      const sender = track(transport('tls'));
      const outbound = record(sender);
      sender.digest(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
      await until(() => inbound.errors.length === 1 && outbound.errors.length === 1);
      const refused = inbound.errors[0] as RemoteError;
      expect(refused.code).to.equal('ERR_PROTOCOL_MISMATCH');
      expect(refused.message).to.match(/TLS ClientHello/);
      expect(refused.remoteAddress).to.match(/127\.0\.0\.1/);
      const failed = outbound.errors[0] as RemoteError;
      expect(failed.code).to.equal('ERR_CONNECTION_CLOSED');
      expect(failed.message).to.match(/does not speak TLS/);
      expect(failed).to.include({ remoteAddress: HOST, remotePort: receiver.port, peerId: 'node-b' });
      expect(inbound.digests).to.have.length(0);
    });

    it("the plain sender (keepAlive) gets ERR_PROTOCOL_MISMATCH from a TLS receiver's alert; the receiver ERR_PLAINTEXT_REFUSED", async () => {
      const receiver = await listening('tls');
      const inbound = record(receiver);
      const sender = track(transport('plain', { keepAlive: true }));
      const outbound = record(sender);
      sender.digest(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
      await until(() => inbound.errors.length === 1 && outbound.errors.length === 1);
      expect(codeOf(inbound.errors[0])).to.equal('ERR_PLAINTEXT_REFUSED');
      const failed = outbound.errors[0] as RemoteError;
      expect(failed.code).to.equal('ERR_PROTOCOL_MISMATCH');
      expect(failed.message).to.match(/speaks TLS/);
      expect(failed).to.include({ remoteAddress: HOST, remotePort: receiver.port, peerId: 'node-b' });
      // The one frame written was refused: certainly lost, and said so.
      expect(failed).to.include({ framesWritten: 1, framesLost: 1 });
      expect(inbound.digests).to.have.length(0);
    });


    it('a TLS receiver in a migration (plaintext.accept) still takes plaintext and sends no alert', async () => {
      const receiver = await listening('tls', { tls: tlsFor('tls', 'peer-1', { plaintext: { accept: true } }) });
      const inbound = record(receiver);
      const sender = track(transport('plain'));
      const outbound = record(sender);
      sender.digest(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
      await until(() => inbound.digests.length === 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(outbound.errors).to.deep.equal([]);
    });
  });
});
