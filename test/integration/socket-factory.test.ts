/**
 * src/tls/socket-factory.ts: the TLS client sockets the transport opens (the
 * server verified against `ca` and named by the host dialled, SNI only for
 * names, the leaf alone read for the default identity check), the client
 * session cache (resumption, `tls.sessionCache`, keyed per remote), and what
 * a rotation does to sessions on both sides (no ticket outlives it).
 * The server certificate a connection reads, chain included, is in
 * server-chain.test.ts.
 */
import { expect } from 'chai';
import type { AddressInfo } from 'node:net';
import { TLSSocket, connect as tlsConnect, createServer } from 'node:tls';
import { IdentityPolicy } from '../../src/tls/identity';
import { SocketFactory } from '../../src/tls/socket-factory';
import { resolveOptions, type TransportOptions } from '../../src/options';
import { HOST, TcpTransport, ca, closeAll, closed, codeOf, listening, next, peerAt, pem, record, sleep, track, transport, until } from '../support/helpers';

/** A send-only TLS transport presenting `peer` (or no certificate), trusting `caName`. */
function senderWith (peer: string | undefined, caName = 'ca', extra: Record<string, unknown> = {}, options: TransportOptions = {}): TcpTransport {
  const material = peer === undefined ? {} : pem(peer);
  return track(new TcpTransport({ host: HOST, port: 0, ...options, tls: { ...material, ca: ca(caName), ...extra } }));
}

describe('TLS socket factory', () => {
  afterEach(closeAll);

  describe('server verification (every TLS client)', () => {
    const cases: Array<[string, string, string]> = [
      ['signed by an untrusted CA', 'rogue-peer', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['expired', 'expired-peer', 'CERT_HAS_EXPIRED'],
      ['not naming the host connected to', 'wrong-name-peer', 'ERR_TLS_CERT_ALTNAME_INVALID']
    ];
    for (const [what, server, code] of cases) {
      it(`refuses a server whose certificate is ${what}, with ${code}`, async () => {
        const receiver = await listening('tls', {}, server);
        const seen = record(receiver);
        const sender = senderWith('peer-2');
        const errors = record(sender).errors;
        sender.digest(peerAt(receiver), { id: 'peer-2' }, []);
        await until(() => errors.length === 1);
        expect(codeOf(errors[0])).to.equal(code);
        await sleep(20);
        expect(seen.digests).to.have.length(0);
      });
    }

    it('sends SNI for a host name and none for an IP literal, and verifies either', async () => {
      const names: Array<string | false> = [];
      const server = createServer({ ...pem('peer-1'), ca: ca() }, (socket) => {
        names.push((socket as TLSSocket & { servername: string | false }).servername);
        socket.resume();
        socket.on('end', () => socket.end());
      });
      await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
      // TLS pools by default: the sender is closed first, so that server.close()
      // does not wait for its pooled connections to go idle.
      const sender = senderWith('peer-2');
      try {
        const port = (server.address() as AddressInfo).port;
        const errors = record(sender).errors;
        sender.digest({ transport: { host: 'localhost', port } }, { id: 'by-name' }, []);
        await until(() => names.length === 1);
        sender.digest({ transport: { host: HOST, port } }, { id: 'by-ip' }, []);
        await until(() => names.length === 2);
        expect(names).to.deep.equal(['localhost', false]);
        expect(errors).to.deep.equal([]);
      } finally {
        await sender.close();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('lets tls.checkServerIdentity override the name check', async () => {
      const receiver = await listening('tls', {}, 'wrong-name-peer');
      const seen = record(receiver);
      const checked: string[] = [];
      const sender = senderWith('peer-2', 'ca', { checkServerIdentity: (host: string) => { checked.push(host); return undefined; } });
      sender.digest(peerAt(receiver), { id: 'override' }, []);
      await until(() => seen.digests.length === 1);
      expect(checked).to.deep.equal([HOST]);
    });

    it('never turns certificate checks off by default', () => {
      const t = transport('tls');
      // rejectUnauthorized is only false when written so.
      expect(JSON.stringify((t as unknown as Record<string, unknown>))).to.not.include('"rejectUnauthorized":false');
    });
  });

  describe('session resumption', () => {
    it('resumes the TLS session on the next connection to the same remote', async () => {
      const receiver = await listening('mtls');
      const seen = record(receiver);
      // One connection per message, so that the second one can resume.
      const sender = senderWith('peer-2', 'ca', {}, { keepAlive: false });
      sender.digest(peerAt(receiver), { id: 'first' }, []);
      await until(() => seen.digests.length === 1);
      await sleep(20);
      sender.digest(peerAt(receiver), { id: 'second' }, []);
      await until(() => seen.digests.length === 2);
      expect(sender.stats().connections.outbound).to.equal(2);
      expect(sender.stats().connections.resumed).to.equal(1);
    });
  });

  describe('handshake cost', () => {
    it('reads no certificate chain for a full handshake per message (Node\'s identity check gets the leaf alone, 0.6-0.8 ms less CPU)', async () => {
      const receiver = await listening('mtls');
      const seen = record(receiver);
      const sender = senderWith('peer-2', 'ca', {}, { keepAlive: false });
      const original = TLSSocket.prototype.getPeerCertificate;
      let detailed = 0;
      TLSSocket.prototype.getPeerCertificate = function (this: TLSSocket, ...args: [boolean?]) {
        if (args[0] === true) detailed++;
        return original.apply(this, args as [true]);
      } as typeof original;
      try {
        sender.digest(peerAt(receiver), { id: 'full' }, []);
        await until(() => seen.digests.length === 1);
      } finally {
        TLSSocket.prototype.getPeerCertificate = original;
      }
      expect(sender.stats().connections.resumed).to.equal(0);
      expect(detailed, 'detailed getPeerCertificate calls for one full handshake').to.equal(0);
    });
  });

  describe('tls.sessionCache', () => {
    it('0 turns resumption off: every connection is a full handshake', async () => {
      const receiver = await listening('mtls');
      const seen = record(receiver);
      const sender = senderWith('peer-2', 'ca', { sessionCache: 0 }, { keepAlive: false });
      for (const id of ['a', 'b', 'c']) {
        sender.digest(peerAt(receiver), { id }, []);
        await until(() => seen.digests.length === ['a', 'b', 'c'].indexOf(id) + 1);
      }
      expect(sender.stats().connections.resumed).to.equal(0);
    });
  });

  describe('sessions and a rotation', () => {
    it('lets no session outlive a rotation: a ticket issued before is not resumed', async () => {
      const receiver = await listening('mtls');
      const seen = record(receiver);
      // A client of the old CA gets a session ticket.
      const { key, cert } = pem('peer-2');
      const first = tlsConnect({ host: HOST, port: receiver.port, ca: ca(), key, cert });
      first.on('error', () => {});
      const [ticket] = await next<[Buffer]>(first, 'session');
      first.end();
      await closed(first);
      // Rotate to trust only the new CA, then offer the old ticket.
      receiver.setSecureContext({ ...pem('next-peer-1'), ca: ca('next-ca') });
      const second = tlsConnect({ host: HOST, port: receiver.port, ca: [ca(), ca('next-ca')], key, cert, session: ticket });
      second.on('error', () => {});
      let reused: boolean | undefined;
      second.on('secureConnect', () => {
        reused = second.isSessionReused();
        second.write(JSON.stringify({ digest: [], sender: { id: 'resumed' } }) + '\n');
      });
      await closed(second);
      await sleep(20);
      expect(reused).to.not.equal(true);
      expect(seen.digests).to.have.length(0);
      expect(seen.errors.length).to.be.at.least(1);
    });

    it("drops the sender's cached sessions", async () => {
      const receiver = await listening('mtls');
      const seen = record(receiver);
      const sender = senderWith('peer-2');
      sender.digest(peerAt(receiver), { id: 'a' }, []);
      await until(() => seen.digests.length === 1);
      await sleep(20);
      sender.setSecureContext({ ...pem('peer-2'), ca: ca() });
      sender.digest(peerAt(receiver), { id: 'b' }, []);
      await until(() => seen.digests.length === 2);
      // The pooled connection was retired by the rotation: 'b' went on a new one, not resumed.
      expect(sender.stats().connections.outbound).to.equal(2);
      expect(sender.stats().connections.resumed).to.equal(0);
    });

    it('never caches a session ticket that arrives after the rotation on a connection made before it', async () => {
      const server = createServer({ ...pem('peer-1'), ca: ca() }, (socket) => socket.resume());
      await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
      const sockets: TLSSocket[] = [];
      try {
        const port = (server.address() as { port: number }).port;
        const options = resolveOptions({ tls: { ...pem('peer-2'), ca: ca(), minVersion: 'TLSv1.3' } });
        const factory = new SocketFactory(options.tls, undefined, new IdentityPolicy(options.tls));
        const dialled = async (): Promise<TLSSocket> => {
          const socket = factory.connect({ host: HOST, port }) as TLSSocket;
          sockets.push(socket);
          socket.on('error', () => {});
          await next(socket, 'secureConnect');
          return socket;
        };
        // TLS 1.3 tickets arrive after the handshake: rotate in between.
        const before = await dialled();
        factory.rotate({ ...pem('peer-2'), ca: ca() });
        factory.verified(before, factory.serverCertificate(before)!);
        await next(before, 'session');
        await sleep(20);
        expect(factory.cachedSessions).to.equal(0);
        // The same sequence without a rotation does cache it.
        const after = await dialled();
        factory.verified(after, factory.serverCertificate(after)!);
        await until(() => factory.cachedSessions === 1);
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });
});
