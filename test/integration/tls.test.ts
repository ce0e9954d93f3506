/**
 * What only TLS and mutual TLS do, seen from the receiving side: client
 * certificates, identity binding, rotation, handshake limits. A refusal the
 * sender learns about is in dial.test.ts; server verification and sessions
 * in socket-factory.test.ts.
 */
import { expect } from 'chai';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TransportOptions } from '../../src/options';
import {
  HOST, TcpTransport, ca, closeAll, closed, codeOf, tlsClientSends, listening, next, peerAt, pem, record, tlsFor, track, transport, until
} from '../support/helpers';

/** A send-only TLS transport presenting `peer` (or no certificate), trusting `caName`. */
function senderWith (peer: string | undefined, caName = 'ca', extra: Record<string, unknown> = {}, options: TransportOptions = {}): TcpTransport {
  const material = peer === undefined ? {} : pem(peer);
  return track(new TcpTransport({ host: HOST, port: 0, ...options, tls: { ...material, ca: ca(caName), ...extra } }));
}

describe('TLS', () => {
  afterEach(closeAll);

  describe('mutual TLS', () => {

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
        await until(() => seen.errors.length === 1, undefined, 'the refusal');
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
