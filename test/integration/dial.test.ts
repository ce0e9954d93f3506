/**
 * src/outbound/dial.ts: opening an outbound connection and knowing when the
 * remote has accepted it. No frame is written before acceptance (for TLS 1.3,
 * the server's first session ticket), so a refusal says exactly how many
 * frames were not delivered; a remote that drops the handshake or never
 * answers it is told apart from one that refused us; a dial still in its
 * handshake when the material is rotated is redone with the new material.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import { OldTcpTransport as Old, freePort } from '../../scripts/typed-packages';
import { TransportError } from '../../src/errors';
import type { TransportOptions } from '../../src/options';
import { HOST, TcpTransport, ca, closeAll, codeOf, listening, peerAt, pem, record, sleep, track, transport, until } from '../support/helpers';
import { holdingProxy, type HoldingProxy } from '../support/trust-fixtures';

interface RemoteError extends Error {
  code?: string;
  remoteAddress?: string;
  remotePort?: number;
  peerId?: string;
}

/** A send-only TLS transport presenting `peer` (or no certificate), trusting `caName`. */
function senderWith (peer: string | undefined, caName = 'ca', extra: Record<string, unknown> = {}, options: TransportOptions = {}): TcpTransport {
  const material = peer === undefined ? {} : pem(peer);
  return track(new TcpTransport({ host: HOST, port: 0, ...options, tls: { ...material, ca: ca(caName), ...extra } }));
}

describe('dialling: a TLS remote refusing us after the handshake', () => {
  afterEach(closeAll);

  const refusals: Array<[string, string | undefined, string]> = [
    ['no certificate', undefined, 'CERT'],
    ['a certificate from another CA', 'rogue-peer', ''],
    ['an expired certificate', 'expired-peer', 'EXPIRED']
  ];
  for (const [what, peer, reason] of refusals) {
    it(`refuses a sender with ${what}: no event, ERR_TLS_HANDSHAKE on the server, ERR_TLS_REFUSED on the sender`, async () => {
      const receiver = await listening('mtls');
      const seen = record(receiver);
      const sender = senderWith(peer);
      const sent = record(sender);
      sender.digest(peerAt(receiver), { id: 'intruder' }, []);
      await until(() => sent.errors.length === 1 && seen.errors.length === 1, undefined, 'both sides to report');
      expect(codeOf(sent.errors[0])).to.equal('ERR_TLS_REFUSED');
      expect(sent.errors[0]).to.have.property('framesDropped', 1);
      expect(sender.stats().frames.out, 'nothing was written before acceptance').to.equal(0);
      expect(codeOf(seen.errors[0])).to.equal('ERR_TLS_HANDSHAKE');
      expect((seen.errors[0] as unknown as { reason: string }).reason).to.include(reason);
      expect(seen.errors[0]).to.have.property('remoteAddress').that.match(/127\.0\.0\.1/);
      await sleep(20);
      expect(seen.digests).to.have.length(0);
      expect(receiver.stats().connections.open).to.equal(0);
    });
  }
});

describe('dialling: a remote that does not finish the TLS handshake', () => {
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

  for (const how of ['reset', 'close'] as const) {
    it(`gives a connection dropped during the TLS handshake (${how}) the code ERR_CONNECTION_CLOSED, with the remote`, async () => {
      const port = await dropper(how);
      const sender = track(transport('tls'));
      const seen = record(sender);
      sender.digest({ id: 'node-b', transport: { host: HOST, port } }, { id: 'node-a' }, []);
      await until(() => seen.errors.length === 1);
      const error = seen.errors[0] as RemoteError;
      expect(error.code).to.equal('ERR_CONNECTION_CLOSED');
      expect(error).to.be.instanceOf(TransportError);
      expect(error).to.include({ remoteAddress: HOST, remotePort: port, peerId: 'node-b' });
      expect(error.message).to.match(/does not speak TLS/);
    });
  }

  it('a TLS sender to a 0.1.6 listener (which holds the ClientHello forever) times out with ERR_CONNECT_TIMEOUT saying the remote does not speak TLS', async () => {
    const port = await freePort();
    const old = new Old({ host: HOST, port });
    old.on('error', () => {});
    await new Promise<void>((resolve) => old.listen(resolve));
    try {
      const sender = track(transport('tls', { connectTimeout: 300 }));
      const outbound = record(sender);
      sender.digest({ id: 'old', transport: { host: HOST, port } }, { id: 'node-a' }, []);
      await until(() => outbound.errors.length === 1);
      const error = outbound.errors[0] as RemoteError;
      expect(error.code).to.equal('ERR_CONNECT_TIMEOUT');
      expect(error.message).to.match(/does not speak TLS/);
      expect(error).to.include({ remoteAddress: HOST, remotePort: port, peerId: 'old' });
    } finally {
      await new Promise<void>((resolve) => old.close(resolve));
    }
  });
});

describe('dialling: a handshake in progress during a rotation', () => {
  const proxies: HoldingProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.stop()));
    await closeAll();
  });

  async function proxyTo (port: number, direction: 'to-client' | 'to-server'): Promise<HoldingProxy> {
    const p = await holdingProxy(port, direction);
    proxies.push(p);
    return p;
  }

  /** A mutual-TLS sender presenting `peer`, trusting the test CA. */
  function sender (peer: string, keepAlive: boolean): TcpTransport {
    return track(new TcpTransport({ host: HOST, port: 0, keepAlive, tls: { ...pem(peer), ca: ca(), requestCert: true } }));
  }

  for (const keepAlive of [false, true]) {
    const mode = keepAlive ? 'keepAlive' : 'per message';

    it(`outbound [${mode}]: a dial stalled before the server's certificate is redone with the new CA, and nothing reaches the old server`, async () => {
      const receiver = await listening('mtls', { keepAlive: false }, 'peer-1');
      const seen = record(receiver);
      const proxy = await proxyTo(receiver.port, 'to-client');
      const s = sender('peer-2', keepAlive);
      const errors = record(s).errors;
      s.digest({ id: 'peer-1', transport: { host: HOST, port: proxy.port } }, { id: 'peer-2' }, []);
      await until(() => proxy.held() > 0, undefined, 'the server flight to be held');
      // Rotate to a CA the receiver's certificate does not chain to.
      s.setSecureContext({ ...pem('next-peer-2'), ca: ca('next-ca') });
      proxy.release();
      await until(() => errors.length === 1, 5000, 'the redone handshake to fail');
      await sleep(50);
      expect(codeOf(errors[0])).to.match(/UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
      expect(seen.digests, 'no frame under the old trust').to.have.length(0);
      expect(s.stats().frames.out).to.equal(0);
      expect(proxy.connections(), 'the stalled dial was replaced').to.equal(2);
    });
  }
});
