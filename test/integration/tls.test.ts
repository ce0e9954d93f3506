/**
 * What only TLS and mutual TLS do: certificate checks both ways, refusals the
 * sender learns about, identity binding, rotation, resumption, handshake limits.
 */
import { expect } from 'chai';
import { connect as netConnect } from 'node:net';
import { TLSSocket, connect as tlsConnect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { TransportOptions } from '../../src/options';
import {
  HOST, TcpTransport, ca, closeAll, closed, codeOf, tlsClientSends, listening, next, peerAt, pem, record, sleep, tlsFor, track, transport, until
} from '../support/helpers';

/** A send-only TLS transport presenting `peer` (or no certificate), trusting `caName`. */
function senderWith (peer: string | undefined, caName = 'ca', extra: Record<string, unknown> = {}, options: TransportOptions = {}): TcpTransport {
  const material = peer === undefined ? {} : pem(peer);
  return track(new TcpTransport({ host: HOST, port: 0, ...options, tls: { ...material, ca: ca(caName), ...extra } }));
}

describe('TLS', () => {
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

  describe('mutual TLS', () => {
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
        await until(() => sent.errors.length === 1 && seen.errors.length === 1, 3000, 'both sides to report');
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

    it('accepts a certificate the CA signed and reports it as authorized', async () => {
      const receiver = await listening('mtls');
      const got = next<[unknown, unknown, { authorized: boolean }]>(receiver, 'digest');
      senderWith('peer-3').digest(peerAt(receiver), { id: 'peer-3' }, []);
      const [, , info] = await got;
      expect(info.authorized).to.equal(true);
    });

    it('refuses a raw TLS client without a certificate before any frame is read', async () => {
      const receiver = await listening('mtls');
      const seen = record(receiver);
      await tlsClientSends(receiver.port, { ca: ca() }, 'x');
      await until(() => seen.errors.length === 1);
      expect(codeOf(seen.errors[0])).to.equal('ERR_TLS_HANDSHAKE');
      expect(seen.digests).to.have.length(0);
    });
  });

  describe("tls.authorize: 'sender-id'", () => {
    it('delivers when sender.id is the certificate CN or SAN URI, and refuses another id with ERR_PEER_UNAUTHORIZED', async () => {
      const receiver = await listening('mtls', { tls: { ...tlsFor('mtls')!, authorize: 'sender-id' } });
      const seen = record(receiver);
      const peer2 = senderWith('peer-2');
      peer2.digest(peerAt(receiver), { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 1);
      peer2.digest(peerAt(receiver), { id: 'spiffe://gossipmonger.test/peer-2' }, []);
      await until(() => seen.digests.length === 2);
      peer2.digest(peerAt(receiver), { id: 'peer-1' }, []);
      await until(() => seen.errors.length === 1);
      expect(codeOf(seen.errors[0])).to.equal('ERR_PEER_UNAUTHORIZED');
      expect(seen.errors[0]).to.have.property('senderId', 'peer-1');
      // DNS names are not identities: every peer certificate names localhost.
      peer2.digest(peerAt(receiver), { id: 'localhost' }, []);
      await until(() => seen.errors.length === 2);
      expect(codeOf(seen.errors[1])).to.equal('ERR_PEER_UNAUTHORIZED');
      expect(seen.digests).to.have.length(2);
      expect(receiver.stats().errors.ERR_PEER_UNAUTHORIZED).to.equal(2);
    });

    it('asks a function policy with the sender and the certificate', async () => {
      const calls: Array<[string, string | undefined]> = [];
      const authorize = (sender: { id: string }, cert: { subject?: { CN?: string } } | undefined): boolean => {
        calls.push([sender.id, cert?.subject?.CN]);
        return sender.id.startsWith('ok');
      };
      const receiver = await listening('mtls', { tls: { ...tlsFor('mtls')!, authorize: authorize as never } });
      const seen = record(receiver);
      const s = senderWith('peer-4');
      s.digest(peerAt(receiver), { id: 'ok-1' }, []);
      s.digest(peerAt(receiver), { id: 'nope' }, []);
      await until(() => seen.digests.length === 1 && seen.errors.length === 1);
      expect(calls.sort()).to.deep.equal([['nope', 'peer-4'], ['ok-1', 'peer-4']]);
    });

    it('is a construction error without requestCert', () => {
      expect(() => new TcpTransport({ tls: { ...tlsFor('tls')!, authorize: 'sender-id' } })).to.throw(TypeError, /requestCert/);
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

  describe('#setSecureContext', () => {
    it('after rotating to a new CA, refuses a peer of the old CA and accepts one of the new', async () => {
      const receiver = await listening('mtls');
      const seen = record(receiver);
      receiver.setSecureContext({ ...pem('next-peer-1'), ca: ca('next-ca') });
      const old = senderWith('peer-2');
      const oldErrors = record(old).errors;
      old.digest(peerAt(receiver), { id: 'old' }, []);
      // The old-CA sender does not trust the new server certificate either.
      await until(() => oldErrors.length === 1 && seen.errors.length === 1);
      const fresh = senderWith('next-peer-2', 'next-ca');
      fresh.digest(peerAt(receiver), { id: 'new' }, []);
      await until(() => seen.digests.length === 1);
      expect((seen.digests[0]![0] as { id: string }).id).to.equal('new');
    });

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

    it('throws for a plain transport, a non-object, or an option that cannot change', () => {
      expect(() => transport('plain').setSecureContext({})).to.throw(TypeError, /options\.tls/);
      const t = transport('tls');
      expect(() => t.setSecureContext(null as never)).to.throw(TypeError);
      expect(() => t.setSecureContext({ requestCert: true } as never)).to.throw(TypeError, /requestCert/);
    });
  });

  describe('handshakeTimeout', () => {
    it('closes a connection that starts a handshake and stalls, with ERR_HANDSHAKE_TIMEOUT', async () => {
      const receiver = await listening('tls', { handshakeTimeout: 150 });
      const seen = record(receiver);
      const socket = netConnect({ host: HOST, port: receiver.port });
      socket.on('error', () => {});
      await next(socket, 'connect');
      socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x50]));
      await closed(socket);
      await until(() => seen.errors.length === 1);
      expect(codeOf(seen.errors[0])).to.equal('ERR_HANDSHAKE_TIMEOUT');
      expect(receiver.stats().connections.open).to.equal(0);
    });

    it('closes a connection that never starts a handshake, with ERR_HANDSHAKE_TIMEOUT', async () => {
      const receiver = await listening('tls', { handshakeTimeout: 150 });
      const seen = record(receiver);
      const socket = netConnect({ host: HOST, port: receiver.port });
      socket.on('error', () => {});
      await closed(socket);
      expect(seen.errors.map(codeOf)).to.deep.equal(['ERR_HANDSHAKE_TIMEOUT']);
    });

    it('counts handshakes in progress against maxConnections', async () => {
      const receiver = await listening('tls', { maxConnections: 2, handshakeTimeout: 2000 });
      record(receiver);
      const sockets = [0, 1, 2, 3].map(() => {
        const s = netConnect({ host: HOST, port: receiver.port });
        s.on('error', () => {});
        return s;
      });
      await until(() => receiver.stats().connections.accepted + receiver.stats().connections.refused >= 4);
      expect(receiver.stats().connections.open).to.be.at.most(2);
      expect(receiver.stats().connections.evicted).to.be.at.least(2);
      for (const s of sockets) s.destroy();
    });
  });

  describe('renegotiation', () => {
    for (const mode of ['tls', 'mtls'] as const) {
      it(`[${mode}] closes a TLS 1.2 connection that asks to renegotiate, and delivers nothing after`, async () => {
        const receiver = await listening(mode);
        const seen = record(receiver);
        const socket = tlsConnect({ host: HOST, port: receiver.port, ca: ca(), maxVersion: 'TLSv1.2', ...(mode === 'mtls' ? pem('peer-2') : {}) });
        socket.on('error', () => {});
        await next(socket, 'secureConnect');
        socket.write(JSON.stringify({ digest: [], sender: { id: 'before' } }) + '\n');
        await until(() => seen.digests.length === 1);
        const asked = socket.renegotiate({}, () => {});
        expect(asked, 'the client sent a renegotiation request').to.equal(true);
        socket.write(JSON.stringify({ digest: [], sender: { id: 'after' } }) + '\n');
        await until(() => seen.errors.length === 1, 3000, 'the refusal');
        expect(seen.errors.map(codeOf)).to.deep.equal(['ERR_TLS_RENEGOTIATION_DISABLED']);
        expect(receiver.stats().connections.open, 'the server closed its side').to.equal(0);
        expect(seen.digests).to.have.length(1);
        socket.destroy();
      });
    }
  });

  describe('probes and plaintext', () => {
    it('reports a port probe that closes without a byte as one ERR_TLS_HANDSHAKE', async () => {
      const receiver = await listening('tls');
      const seen = record(receiver);
      const socket = netConnect({ host: HOST, port: receiver.port });
      socket.on('error', () => {});
      await next(socket, 'connect');
      socket.end();
      await until(() => seen.errors.length === 1);
      expect(codeOf(seen.errors[0])).to.equal('ERR_TLS_HANDSHAKE');
    });

    it('refuses a plaintext frame with ERR_PLAINTEXT_REFUSED and no event', async () => {
      const receiver = await listening('tls');
      const seen = record(receiver);
      const socket = netConnect({ host: HOST, port: receiver.port });
      socket.on('error', () => {});
      socket.end(JSON.stringify({ digest: [], sender: { id: 'plain' } }) + '\r\n');
      await until(() => seen.errors.length === 1);
      expect(codeOf(seen.errors[0])).to.equal('ERR_PLAINTEXT_REFUSED');
      expect(seen.digests).to.have.length(0);
      expect(receiver.stats().plaintext.connections).to.equal(1);
    });
  });
});
