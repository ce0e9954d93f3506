/**
 * Links (src/tls/link.ts): under TLS with keepAlive, one connection carries
 * both directions between two peers. Shown in TLS, mutual TLS and mutual TLS
 * under 'sender-id': both directions over the connection one peer dialled;
 * both peers dialling at once (one connection survives, no frame lost); a
 * peer that does not offer the link (an older release, a hand-made client)
 * served one connection per direction as before; what binds a link (a
 * verified certificate naming the advertised host, or under 'sender-id' the
 * sender's id) and what does not; every frame read on our own dialled link
 * checked as an inbound one; and the idle deadlines of a shared connection.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { connect as tlsConnect, createServer as tlsCreateServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { TransportOptions } from '../../src/options';
import { HAVE_OPENSSL, makeCrl } from '../support/trust-fixtures';
import { HOST, TcpTransport, ca, closeAll, closed, codeOf, listening, pem, rawClient, record, sleep, tlsFor, until, type Mode } from '../support/helpers';

const LINK = 'gossipmonger-link/1';

interface Peer { id: string; transport: { host: string; port: number } }
const at = (t: TcpTransport, id: string): Peer => ({ id, transport: { host: HOST, port: t.port } });

interface Setting { name: string; mode: Mode; extra: Record<string, unknown>; cluster?: string }
const SHARING: Setting[] = [
  { name: 'TLS', mode: 'tls', extra: {} },
  { name: 'mutual TLS', mode: 'mtls', extra: {} },
  { name: 'mutual TLS, sender-id', mode: 'mtls', extra: { authorize: 'sender-id' } },
  { name: 'mutual TLS, cluster', mode: 'mtls', extra: {}, cluster: 'blue' }
];

/** A listening transport presenting `peer`'s certificate (its id is `peer` too). */
function node (setting: Setting, peer: string, options: TransportOptions = {}): Promise<TcpTransport> {
  return listening(setting.mode, { ...options, ...(setting.cluster ? { cluster: setting.cluster } : {}), tls: tlsFor(setting.mode, peer, setting.extra) }, peer);
}

/** A hand-made TLS server (an older peer, or a hostile one): collects the frames it reads. */
async function tlsServer (peer: string, options: { requestCert?: boolean; ALPNCallback?: (o: { protocols: string[] }) => string | undefined } = {}, onSecure: (socket: TLSSocket) => void = () => {}): Promise<{ server: TlsServer; port: number; frames: string[]; sockets: TLSSocket[] }> {
  const frames: string[] = [];
  const sockets: TLSSocket[] = [];
  const server = tlsCreateServer({ ...pem(peer), ca: ca(), requestCert: options.requestCert ?? false, ...(options.ALPNCallback ? { ALPNCallback: options.ALPNCallback } : {}) }, (socket) => {
    sockets.push(socket);
    let text = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const lines = text.split('\n');
      text = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') frames.push(line.trim());
    });
    onSecure(socket);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, frames, sockets };
}

const digestFrom = (id: string, port: number, version = 1): string => JSON.stringify({ digest: [{ id, maxVersionSeen: version }], sender: { id, transport: { host: HOST, port } } }) + '\r\n';

describe('links: one connection per pair of peers', () => {
  const servers: TlsServer[] = [];
  afterEach(async () => {
    await closeAll();
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  for (const setting of SHARING) {
    describe(`[${setting.name}]`, () => {
      it('carries both directions of a pair over the connection one peer dialled', async () => {
        const a = await node(setting, 'peer-1');
        const b = await node(setting, 'peer-2');
        const seenA = record(a);
        const seenB = record(b);
        // b answers a digest as gossipmonger does: deltas to the digest's sender.
        b.on('digest', (sender) => b.deltas(sender, at(b, 'peer-2'), [['peer-2', 'k', 'v', 1]]));
        a.digest(at(b, 'peer-2'), at(a, 'peer-1'), []);
        await until(() => seenA.deltas.length === 1, 5000, 'b\'s answer at a');
        // b's own sends to a later take the same connection.
        b.digest(at(a, 'peer-1'), at(b, 'peer-2'), []);
        await until(() => seenA.digests.length === 1, 5000, 'b\'s digest at a');
        expect(seenA.errors.concat(seenB.errors).map(String)).to.deep.equal([]);
        expect(a.stats().connections).to.include({ outbound: 1, accepted: 0 });
        expect(b.stats().connections).to.include({ outbound: 0, accepted: 1, open: 1 });
        // What b sent was read on the connection a dialled: it names b's listening port.
        expect((seenA.deltas[0]![2] as { remotePort: number }).remotePort).to.equal(b.port);
        expect((seenA.digests[0]![2] as { remotePort: number }).remotePort).to.equal(b.port);
      });

      it('when both peers dial at once, keeps one connection and loses no frame', async () => {
        for (let round = 0; round < 4; round++) {
          const a = await node(setting, 'peer-1');
          const b = await node(setting, 'peer-2');
          const seenA = record(a);
          const seenB = record(b);
          const versions = (digests: unknown[][]): number[] => digests.map((d) => (d[1] as Array<{ maxVersionSeen: number }>)[0]!.maxVersionSeen).sort((x, y) => x - y);
          const total = 60;
          // Both start sending before either connection exists, and go on while they open.
          for (let i = 1; i <= total; i++) {
            a.digest(at(b, 'peer-2'), at(a, 'peer-1'), [{ id: 'peer-1', maxVersionSeen: i }]);
            b.digest(at(a, 'peer-1'), at(b, 'peer-2'), [{ id: 'peer-2', maxVersionSeen: i }]);
            if (i % 10 === 0) await sleep(5);
          }
          await until(() => seenA.digests.length === total && seenB.digests.length === total, 8000, 'every frame both ways');
          const all = Array.from({ length: total }, (_, i) => i + 1);
          expect(versions(seenA.digests)).to.deep.equal(all);
          expect(versions(seenB.digests)).to.deep.equal(all);
          // Both dialled; one connection survives, the other ended by its dialler.
          expect(a.stats().connections.outbound + b.stats().connections.outbound).to.equal(2);
          await until(() => a.stats().connections.open + b.stats().connections.open === 1 &&
            a.stats().connections.outboundOpen + b.stats().connections.outboundOpen === 1 &&
            a.stats().connections.retiring + b.stats().connections.retiring === 0, 5000, 'one connection left');
          // Later frames both ways use the survivor: no new dial.
          a.digest(at(b, 'peer-2'), at(a, 'peer-1'), [{ id: 'peer-1', maxVersionSeen: total + 1 }]);
          b.digest(at(a, 'peer-1'), at(b, 'peer-2'), [{ id: 'peer-2', maxVersionSeen: total + 1 }]);
          await until(() => seenA.digests.length === total + 1 && seenB.digests.length === total + 1);
          expect(a.stats().connections.outbound + b.stats().connections.outbound).to.equal(2);
          expect(seenA.errors.concat(seenB.errors).map(String)).to.deep.equal([]);
          // Frames written on either connection, the survivor or the one let go of, leave the memory budget once flushed.
          await until(() => a.stats().outbound.queuedBytes === 0 && b.stats().outbound.queuedBytes === 0, 5000, 'outbound memory budget back to 0');
          await closeAll();
        }
      });
    });
  }

  for (const mode of ['tls', 'mtls'] as const) {
    for (const cluster of [undefined, 'blue']) {
      it(`[${mode}${cluster ? ', cluster' : ''}] serves a peer that does not offer the link both ways, one connection per direction`, async () => {
        const b = await listening(mode, cluster ? { cluster } : {}, 'peer-2');
        const seenB = record(b);
        b.on('digest', (sender) => b.deltas(sender, at(b, 'peer-2'), [['peer-2', 'k', 'v', 1]]));
        // The older peer: its server picks only the cluster name (if any), its client offers only that.
        const alpn = cluster ? [`gossipmonger/${cluster}`] : undefined;
        const old = await tlsServer('peer-1', { requestCert: mode === 'mtls', ...(alpn ? { ALPNCallback: ({ protocols }: { protocols: string[] }) => protocols.includes(alpn[0]!) ? alpn[0] : undefined } : {}) });
        servers.push(old.server);
        const client = tlsConnect({ host: HOST, port: b.port, ...pem('peer-1'), ca: ca(), ...(alpn ? { ALPNProtocols: alpn } : {}) });
        client.on('error', () => {});
        let bytesBack = 0;
        client.on('data', (chunk: Buffer) => { bytesBack += chunk.length; });
        await once(client, 'secureConnect');
        client.write(digestFrom('peer-1', old.port));
        await until(() => old.frames.length === 1, 5000, 'the answer at the older peer\'s server');
        expect(JSON.parse(old.frames[0]!)).to.have.property('deltas');
        // Two more, to see that neither direction switches.
        client.write(digestFrom('peer-1', old.port, 2));
        await until(() => old.frames.length === 2);
        expect(bytesBack, 'nothing written on the older peer\'s own connection').to.equal(0);
        expect(old.sockets).to.have.length(1);
        expect(old.sockets[0]!.alpnProtocol, 'the link was offered, not picked').to.equal(alpn ? alpn[0] : false);
        expect(b.stats().connections).to.include({ outbound: 1, accepted: 1 });
        expect(seenB.errors.map(String)).to.deep.equal([]);
        client.destroy();
      });
    }
  }

  it('[tls] refuses, in the handshake, a client that offers ALPN names none of which is ours (as a cluster server does)', async () => {
    const b = await listening('tls', {}, 'peer-2');
    const seenB = record(b);
    const client = tlsConnect({ host: HOST, port: b.port, ca: ca(), ALPNProtocols: ['h2', 'http/1.1'] });
    const [error] = await once(client, 'error') as [NodeJS.ErrnoException];
    expect(error.code).to.equal('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
    await until(() => seenB.errors.length === 1);
    expect(codeOf(seenB.errors[0])).to.equal('ERR_CLUSTER_MISMATCH');
    expect(seenB.errors[0]!.message).to.include('no cluster');
    // A client offering no ALPN at all is served as before.
    const plain = tlsConnect({ host: HOST, port: b.port, ca: ca() });
    plain.on('error', () => {});
    await once(plain, 'secureConnect');
    plain.write(digestFrom('stranger', 1));
    await until(() => seenB.digests.length === 1);
    plain.destroy();
  });

  describe('what binds a link', () => {
    /** A hand-made peer offering the link: it sends a digest advertising `advertised` and counts what comes back. */
    async function handMade (mode: Mode, port: number, advertised: number, cert: string | undefined): Promise<{ back: () => number; socket: TLSSocket }> {
      const socket = tlsConnect({ host: HOST, port, ca: ca(), ALPNProtocols: [LINK], ...(cert ? pem(cert) : {}) });
      socket.on('error', () => {});
      let back = 0;
      socket.on('data', (chunk: Buffer) => { back += chunk.length; });
      await once(socket, 'secureConnect');
      expect(socket.alpnProtocol, `${mode}: the server picks the link`).to.equal(LINK);
      socket.write(digestFrom(cert ?? 'stranger', advertised));
      return { back: () => back, socket };
    }

    for (const mode of ['tls', 'mtls'] as const) {
      it(`[${mode}] answers over a link whose verified certificate names the host the sender advertises`, async () => {
        const b = await listening(mode, {}, 'peer-2');
        record(b);
        b.on('digest', (sender) => b.deltas(sender, at(b, 'peer-2'), [['peer-2', 'k', 'v', 1]]));
        const c = await listening(mode, {}, 'peer-3');
        const seenC = record(c);
        const peer = await handMade(mode, b.port, c.port, 'peer-4');
        await until(() => peer.back() > 0, 5000, 'the answer on the link');
        expect(b.stats().connections.outbound).to.equal(0);
        expect(seenC.deltas).to.have.length(0);
        peer.socket.destroy();
      });

      it(`[${mode}] never binds a link whose certificate does not name the host the sender advertises: answers by dialling`, async () => {
        const b = await listening(mode, {}, 'peer-2');
        record(b);
        b.on('digest', (sender) => b.deltas(sender, at(b, 'peer-2'), [['peer-2', 'k', 'v', 1]]));
        const c = await listening(mode, {}, 'peer-3');
        const seenC = record(c);
        // A certificate the CA signed for elsewhere.invalid and 192.0.2.1, claiming 127.0.0.1.
        const peer = await handMade(mode, b.port, c.port, 'wrong-name-peer');
        await until(() => seenC.deltas.length === 1, 5000, 'the answer at the advertised address');
        await sleep(50);
        expect(peer.back()).to.equal(0);
        expect(b.stats().connections.outbound).to.equal(1);
        peer.socket.destroy();
      });
    }

    for (const [who, cert] of [['without a certificate', undefined], ['with one the CA did not sign (CN=peer-1, SAN 127.0.0.1, another CA)', 'rogue-peer']] as const) {
      it(`[tls] never binds a link from a client ${who}`, async () => {
        const b = await listening('tls', {}, 'peer-2');
        record(b);
        b.on('digest', (sender) => b.deltas(sender, at(b, 'peer-2'), [['peer-2', 'k', 'v', 1]]));
        const c = await listening('tls', {}, 'peer-3');
        const seenC = record(c);
        const peer = await handMade('tls', b.port, c.port, cert);
        await until(() => seenC.deltas.length === 1, 5000, 'the answer at the advertised address');
        await sleep(50);
        expect(peer.back()).to.equal(0);
        peer.socket.destroy();
      });
    }

    it('[mutual TLS, sender-id] a link carries frames for the id its certificate proved, never another id at the same address', async () => {
      const setting = SHARING[2]!;
      const a = await node(setting, 'peer-1');
      const b = await node(setting, 'peer-2');
      const seenA = record(a);
      const seenB = record(b);
      a.digest(at(b, 'peer-2'), at(a, 'peer-1'), []);
      await until(() => seenB.digests.length === 1);
      // Same host and port as peer-1, another id: dialled for its own proof, which a's certificate cannot give.
      b.digest({ id: 'peer-3', transport: { host: HOST, port: a.port } }, at(b, 'peer-2'), []);
      await until(() => seenB.errors.length === 1, 5000, 'the outbound refusal');
      expect(codeOf(seenB.errors[0])).to.equal('ERR_PEER_UNAUTHORIZED');
      expect(seenB.errors[0]).to.include({ peerId: 'peer-3', framesDropped: 1 });
      await sleep(50);
      expect(seenA.digests).to.have.length(0);
      expect(b.stats().connections.outbound).to.equal(1);
    });
  });

  describe('frames read on our own dialled link', () => {
    /** A hand-made server that picks the link and writes `reply` on each connection once it has read a frame. */
    async function replying (mode: Mode, reply: (socket: TLSSocket) => void): Promise<number> {
      const server = await tlsServer('peer-2', { requestCert: mode === 'mtls', ALPNCallback: ({ protocols }) => protocols.includes(LINK) ? LINK : undefined }, (socket) => {
        socket.once('data', () => reply(socket));
      });
      servers.push(server.server);
      return server.port;
    }

    for (const mode of ['tls', 'mtls'] as const) {
      it(`[${mode}] refuses an invalid frame with ERR_INVALID_MESSAGE, no event, and closes the link`, async () => {
        const port = await replying(mode, (socket) => socket.write('{"digest": "not-an-array", "sender": {"id": "peer-2"}}\r\n'));
        const a = await listening(mode, {}, 'peer-1');
        const seenA = record(a);
        a.digest({ id: 'peer-2', transport: { host: HOST, port } }, at(a, 'peer-1'), []);
        await until(() => seenA.errors.length === 1, 5000, 'the refusal');
        expect(codeOf(seenA.errors[0])).to.equal('ERR_INVALID_MESSAGE');
        expect(seenA.errors[0]).to.include({ remoteAddress: HOST, remotePort: port });
        expect(seenA.digests).to.have.length(0);
        await until(() => a.stats().connections.outboundOpen === 0, 5000, 'the link closed');
      });

      it(`[${mode}] closes a link on which a frame is not complete within frameTimeout (ERR_FRAME_TIMEOUT)`, async () => {
        const port = await replying(mode, (socket) => socket.write('{"digest": [], "sen'));
        const a = await listening(mode, { frameTimeout: 200 }, 'peer-1');
        const seenA = record(a);
        a.digest({ id: 'peer-2', transport: { host: HOST, port } }, at(a, 'peer-1'), []);
        await until(() => seenA.errors.length === 1, 5000, 'the frame deadline');
        expect(codeOf(seenA.errors[0])).to.equal('ERR_FRAME_TIMEOUT');
        await until(() => a.stats().connections.outboundOpen === 0, 5000, 'the link closed');
      });
    }

    it('[mutual TLS, sender-id] refuses a frame whose sender the server\'s certificate does not name (ERR_PEER_UNAUTHORIZED)', async () => {
      const port = await replying('mtls', (socket) => socket.write(digestFrom('peer-9', 1)));
      const a = await listening('mtls', { tls: tlsFor('mtls', 'peer-1', { authorize: 'sender-id' }) }, 'peer-1');
      const seenA = record(a);
      a.digest({ id: 'peer-2', transport: { host: HOST, port } }, at(a, 'peer-1'), []);
      await until(() => seenA.errors.length === 1, 5000, 'the refusal');
      expect(codeOf(seenA.errors[0])).to.equal('ERR_PEER_UNAUTHORIZED');
      expect(seenA.errors[0]).to.include({ senderId: 'peer-9' });
      expect(seenA.digests).to.have.length(0);
    });
  });

  describe('idle deadlines of a shared connection', () => {
    const setting = SHARING[1]!;

    it('the acceptor\'s writes keep a link open past the acceptor\'s idleTimeout', async () => {
      const a = await node(setting, 'peer-1');
      const b = await node(setting, 'peer-2', { idleTimeout: 600 });
      const seenA = record(a);
      const seenB = record(b);
      a.digest(at(b, 'peer-2'), at(a, 'peer-1'), []);
      await until(() => seenB.digests.length === 1);
      // Only b writes from now on, for twice its idle timeout (a write every tenth of it).
      for (let i = 0; i < 20; i++) {
        b.digest(at(a, 'peer-1'), at(b, 'peer-2'), []);
        await sleep(60);
      }
      await until(() => seenA.digests.length === 20);
      expect(seenB.errors.map(codeOf)).to.deep.equal([]);
      expect(b.stats().connections).to.include({ outbound: 0, accepted: 1, open: 1 });
    });

    it('frames read on our own dialled link keep it open past keepAlive.idleTimeout', async () => {
      const a = await node(setting, 'peer-1', { keepAlive: { idleTimeout: 600 } });
      const b = await node(setting, 'peer-2');
      const seenA = record(a);
      const seenB = record(b);
      a.digest(at(b, 'peer-2'), at(a, 'peer-1'), []);
      await until(() => seenB.digests.length === 1);
      // Only b writes, over a's link, for twice a's idle timeout.
      for (let i = 0; i < 20; i++) {
        b.digest(at(a, 'peer-1'), at(b, 'peer-2'), []);
        await sleep(60);
      }
      await until(() => seenA.digests.length === 20);
      expect(a.stats().connections).to.include({ outbound: 1, outboundOpen: 1 });
      expect(b.stats().connections.outbound, 'b never needed a connection of its own').to.equal(0);
      expect(seenA.errors.concat(seenB.errors).map(String)).to.deep.equal([]);
    });

    for (const mode of ['plain', 'tls', 'mtls'] as const) {
      it(`[${mode}] gives a connection that has delivered no frame no more than frameTimeout of silence, and one that has the whole idleTimeout`, async () => {
        const b = await listening(mode, { idleTimeout: 60000, frameTimeout: 250 }, 'peer-2');
        const seenB = record(b);
        const silent = mode === 'plain'
          ? await rawClient('plain', b.port)
          : await rawClient(mode, b.port, 'peer-3');
        // Plain connections only start once a byte arrives: an empty line starts this one.
        if (mode === 'plain') silent.write('\n');
        const useful = await rawClient(mode, b.port, 'peer-3');
        useful.write(digestFrom('peer-3', 1));
        await closed(silent, 5000);
        expect(seenB.errors.map(codeOf)).to.deep.equal(['ERR_IDLE_TIMEOUT']);
        await sleep(300);
        expect(useful.destroyed, 'the connection that delivered a frame is kept').to.equal(false);
        expect(b.stats().connections.open).to.equal(1);
        useful.destroy();
      });
    }
  });

  (HAVE_OPENSSL ? it : it.skip)('[tls] a rotation closes a link whose certificate no longer verifies, although TLS alone never required one', async () => {
    const a = await listening('tls', {}, 'peer-1');
    record(a);
    const b = await listening('tls', {}, 'peer-2');
    const seenB = record(b);
    a.digest(at(b, 'peer-2'), at(a, 'peer-1'), []);
    await until(() => seenB.digests.length === 1);
    b.digest(at(a, 'peer-1'), at(b, 'peer-2'), []);
    await until(() => a.stats().frames.in === 1);
    expect(b.stats().connections.outbound).to.equal(0);
    b.setSecureContext({ crl: makeCrl('ca', ['peer-1']) });
    await until(() => seenB.errors.length === 1, 5000, 'the re-check');
    expect(codeOf(seenB.errors[0])).to.equal('ERR_PEER_UNTRUSTED');
    expect(seenB.errors[0]).to.include({ reason: 'CERT_REVOKED', subject: 'peer-1' });
    await until(() => b.stats().connections.open === 0);
  });
});
