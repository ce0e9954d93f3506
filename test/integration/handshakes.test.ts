/**
 * Bounds on TLS handshakes in progress: outbound (`outbound.maxHandshakes`,
 * pooled and per message) and inbound (`maxHandshakes`). Past the bound a
 * handshake waits its turn instead of starting, so a burst is served in
 * order; the attack on the inbound queue (stalled handshakes) is in
 * test/system/attacks.test.ts.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { HOST, ca, closeAll, digestFrame, listening, pem, record, sleep, track, transport, until } from '../support/helpers';

/** TCP listeners that accept and never answer: a TLS dial to one waits until its connectTimeout. */
async function tarpits (count: number): Promise<{ ports: number[]; seen: number[]; accepted: () => number; close: () => Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const seen: number[] = [];
  const servers: Server[] = [];
  for (let i = 0; i < count; i++) {
    const index = i;
    seen.push(0);
    const server = createServer((socket) => {
      sockets.add(socket);
      seen[index]!++;
      accepted++;
      socket.on('error', () => {});
      socket.once('close', () => sockets.delete(socket));
    });
    server.listen(0, HOST);
    await once(server, 'listening');
    servers.push(server);
  }
  return {
    ports: servers.map((s) => (s.address() as { port: number }).port),
    seen,
    accepted: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((s) => s.listening ? new Promise((resolve) => s.close(resolve)) : undefined));
    }
  };
}

/**
 * A TLS client (mutual TLS, `peer`'s certificate) over a TCP connection that
 * lets its first write (the ClientHello) through and holds the rest until
 * release(): the server starts the handshake and waits. Once released and
 * secure, it sends one digest as `id`.
 */
function heldClient (port: number, peer: string, id: string): { id: string; started: () => boolean; released: () => boolean; release: () => void; destroy: () => void } {
  const raw = netConnect({ host: HOST, port });
  raw.on('error', () => {});
  let writes = 0;
  let released = false;
  let answered = false;
  const held: Array<[Buffer, (error?: Error | null) => void]> = [];
  const pipe = new Duplex({
    read () {},
    write (chunk: Buffer, _encoding, callback) {
      if (writes++ === 0 || released) raw.write(chunk, callback);
      else held.push([chunk, callback]);
    },
    final (callback) {
      raw.end();
      callback();
    }
  });
  raw.on('data', (chunk: Buffer) => {
    answered = true;
    pipe.push(chunk);
  });
  raw.on('end', () => pipe.push(null));
  raw.on('close', () => pipe.destroy());
  const socket = tlsConnect({ socket: pipe, servername: 'localhost', ca: ca(), ...pem(peer) });
  socket.on('error', () => {});
  socket.once('secureConnect', () => socket.write(digestFrame(id) + '\n'));
  return {
    id,
    // The server answered its ClientHello: its handshake is in progress.
    started: () => answered,
    released: () => released,
    release: () => {
      released = true;
      for (const [chunk, callback] of held.splice(0)) raw.write(chunk, callback);
    },
    destroy: () => {
      socket.destroy();
      raw.destroy();
    }
  };
}

describe('bounds on TLS handshakes in progress', () => {
  afterEach(closeAll);

  for (const keepAlive of [true, false]) {
    it(`outbound (${keepAlive ? 'pooled' : 'per message'}): past outbound.maxHandshakes a dial waits its turn, and each one is tried`, async () => {
      const pits = await tarpits(5);
      try {
        // A place is held a quarter of connectTimeout at most: 500 ms here.
        const sender = track(transport('tls', { keepAlive, connectTimeout: 2000, outbound: { maxHandshakes: 2 } }));
        const seen = record(sender);
        for (const port of pits.ports) sender.digest({ id: `pit-${port}`, transport: { host: HOST, port } }, { id: 'sender' }, []);
        // Two dials started, three waiting (name resolution is synchronous for an IP literal).
        expect(sender.stats().handshakes).to.include({ outbound: 2, outboundQueued: 3 });
        await until(() => pits.accepted() === 2, 5000, 'the first two dials');
        await sleep(100);
        expect(pits.accepted(), 'sockets opened while two handshakes are in progress').to.equal(2);
        // The others start in turn, none before its place.
        await until(() => pits.accepted() === 5, 5000, 'every dial in turn');
        expect(pits.seen).to.deep.equal([1, 1, 1, 1, 1]);
        // The tarpits hang up: every frame is reported, and nothing waits any more.
        await pits.close();
        await until(() => seen.errors.length === 5, 5000, 'every dial to fail');
        expect(seen.errors.map((e) => (e as { framesDropped?: number }).framesDropped)).to.deep.equal([1, 1, 1, 1, 1]);
        expect(sender.stats().handshakes).to.include({ outbound: 0, outboundQueued: 0 });
      } finally {
        await pits.close();
      }
    });
  }

  it('outbound: a handshake that does not finish holds its place a quarter of connectTimeout at most', async () => {
    const pits = await tarpits(2);
    try {
      const sender = track(transport('tls', { connectTimeout: 2000, outbound: { maxHandshakes: 1 } }));
      const seen = record(sender);
      for (const port of pits.ports) sender.digest({ id: `pit-${port}`, transport: { host: HOST, port } }, { id: 'sender' }, []);
      expect(sender.stats().handshakes).to.include({ outbound: 1, outboundQueued: 1 });
      // The second dial starts while the first still waits for an answer (it would give up at 2 s).
      await until(() => pits.seen[1] === 1, 5000, 'the second dial');
      expect(seen.errors, 'the first dial has not given up').to.deep.equal([]);
      expect(sender.stats().handshakes).to.include({ outboundQueued: 0 });
    } finally {
      await pits.close();
    }
  });

  it('outbound: close() drops what waits for a handshake slot, and reports every frame', async () => {
    const pits = await tarpits(3);
    try {
      for (const keepAlive of [true, false]) {
        const sender = track(transport('tls', { keepAlive, connectTimeout: 400, outbound: { maxHandshakes: 1 } }));
        const seen = record(sender);
        for (const port of pits.ports) sender.digest({ id: `pit-${port}`, transport: { host: HOST, port } }, { id: 'sender' }, []);
        expect(sender.stats().handshakes).to.include({ outbound: 1, outboundQueued: 2 });
        await sender.close();
        const dropped = seen.errors.reduce((sum, error) => sum + ((error as { framesDropped?: number }).framesDropped ?? 0), 0);
        expect(dropped, seen.errors.map(String).join('; ')).to.equal(3);
        expect(sender.stats().handshakes).to.include({ outbound: 0, outboundQueued: 0 });
      }
      expect(pits.seen, 'the waiting dials never opened a socket').to.deep.equal([2, 0, 0]);
    } finally {
      await pits.close();
    }
  });

  it('inbound: past maxHandshakes a handshake waits its turn, first come first served, and each is served', async () => {
    // A long handshakeTimeout: no handshake here starts for having waited (a quarter of it).
    const receiver = await listening('mtls', { maxHandshakes: 2, handshakeTimeout: 30000 }, 'peer-1');
    const seen = record(receiver);
    // Five clients whose ClientHello goes out and whose second flight waits for release(): their handshakes stay in progress.
    const clients = [];
    for (let i = 0; i < 5; i++) clients.push(heldClient(receiver.port, `peer-${2 + (i % 4)}`, `held-${i}`));
    await until(() => receiver.stats().handshakes.inboundQueued === 3, 5000, 'two handshakes in progress and three waiting');
    expect(receiver.stats().handshakes.inbound).to.equal(2);
    // Releasing one lets it finish, and the next in line starts: never more than two at once.
    for (let done = 1; done <= 5; done++) {
      const next = clients.find((c) => c.started() && !c.released())!;
      expect(next, 'a client whose handshake started').to.not.equal(undefined);
      next.release();
      await until(() => seen.digests.length === done, 5000, `digest ${done}`);
      await until(() => receiver.stats().handshakes.inbound === Math.min(2, 5 - done), 5000, 'the next handshake to start');
      expect(receiver.stats().handshakes.inboundQueued).to.equal(Math.max(0, 3 - done));
    }
    // In the order they arrived.
    expect(seen.digests.map((d) => (d[0] as { id: string }).id)).to.deep.equal(clients.map((c) => c.id));
    expect(seen.errors.map(String)).to.deep.equal([]);
    for (const c of clients) c.destroy();
  });
});
