/**
 * keepAlive: one pooled connection per remote, in plain TCP and TLS.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer as netServer, type AddressInfo, type Server } from 'node:net';
import { createServer as tlsServer } from 'node:tls';
import { join } from 'node:path';
import { HOST, ca, closeAll, codeOf, listening, peerAt, pem, record, sleep, tlsFor, track, transport, until, type Mode } from '../support/helpers';
import { TcpTransport } from '../support/helpers';
import { Ledger, type ReportedError } from '../system/chaos/ledger';

/** A server that accepts (completing TLS) and never reads. */
async function stalledServer (mode: Mode): Promise<{ server: Server; stop: () => Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>();
  const onSocket = (socket: import('node:net').Socket): void => {
    socket.pause();
    socket.on('error', () => {});
    sockets.add(socket);
  };
  const server = mode === 'plain' ? netServer(onSocket) : tlsServer({ ...pem('peer-1'), ca: ca() }, onSocket);
  // Every accepted TCP socket, a TLS one still in its handshake included: on a
  // loaded machine stop() can come before the handshake ends, and the server
  // cannot close while such a socket lives.
  let stopped = false;
  server.on('connection', (socket: import('node:net').Socket) => {
    if (stopped) socket.destroy();
    else sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const stop = async (): Promise<void> => {
    stopped = true;
    // A paused socket never reads the peer's FIN, so close it from here.
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return { server, stop };
}

for (const mode of ['plain', 'tls', 'mtls'] as Mode[]) {
  describe(`keepAlive [${mode}]`, () => {
    afterEach(closeAll);

    it('carries thousands of frames on one connection, complete and in order', async () => {
      const receiver = await listening(mode);
      const seen = record(receiver);
      const sender = track(transport(mode, { keepAlive: true }, 'peer-2'));
      const errors = record(sender).errors;
      const n = 3000;
      for (let i = 0; i < n; i++) sender.digest(peerAt(receiver), { id: 'ka' }, [{ id: 'ka', maxVersionSeen: i }]);
      await until(() => seen.digests.length === n, 10000, `${n} frames`);
      const order = seen.digests.map((d) => (d[1] as Array<{ maxVersionSeen: number }>)[0]!.maxVersionSeen);
      expect(order).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      expect(sender.stats().connections.outbound).to.equal(1);
      expect(receiver.stats().connections.accepted).to.equal(1);
      expect(errors).to.deep.equal([]);
    });

    it('reopens a pooled connection that the server closed, and the next frames arrive', async () => {
      const receiver = await listening(mode, { idleTimeout: 100 });
      const seen = record(receiver);
      const sender = track(transport(mode, { keepAlive: true }, 'peer-2'));
      const errors = record(sender).errors;
      // One peer (a connection speaks for one id), its frames told apart by version.
      const send = (version: number): void => sender.digest(peerAt(receiver), { id: 'ka' }, [{ id: 'ka', maxVersionSeen: version }]);
      send(1);
      await until(() => seen.digests.length === 1);
      await until(() => receiver.stats().connections.open === 0, undefined, 'the server to close the idle connection');
      // The sender has seen the close (its pooled socket closed and gave its
      // outbound slot back) before it sends again: a frame written before the
      // FIN is read goes to a dead socket, which is ERR_CONNECTION_LOST, not this case.
      await until(() => sender.stats().connections.outboundOpen === 0, undefined, 'the sender to see its connection closed');
      send(2);
      send(3);
      await until(() => seen.digests.length === 3);
      expect(seen.digests.map((d) => (d[1] as Array<{ maxVersionSeen: number }>)[0]!.maxVersionSeen)).to.deep.equal([1, 2, 3]);
      expect(receiver.stats().connections.accepted).to.equal(2);
      expect(sender.stats().connections.outbound).to.equal(2);
      // The second TLS connection resumes the session of the first.
      expect(sender.stats().connections.resumed).to.equal(mode === 'plain' ? 0 : 1);
      expect(errors).to.deep.equal([]);
    });

    it('refuses frames with ERR_BACKPRESSURE instead of queueing past maxQueuedBytes', async () => {
      const { server, stop } = await stalledServer(mode);
      try {
        const port = (server.address() as AddressInfo).port;
        const limit = 256 * 1024;
        const sender = track(transport(mode, { keepAlive: { maxQueuedBytes: limit } }, 'peer-2'));
        const errors = record(sender).errors;
        const value = 'v'.repeat(1024);
        const before = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed;
        for (let round = 0; round < 50 && errors.length === 0; round++) {
          for (let i = 0; i < 100; i++) sender.deltas({ transport: { host: HOST, port } }, { id: 'bp' }, [['bp', 'k', value, i]]);
          await sleep(5);
        }
        expect(errors.length).to.be.above(0);
        expect(errors.every((e) => codeOf(e) === 'ERR_BACKPRESSURE')).to.equal(true);
        // Each refusal accounts for its one frame.
        expect(errors.every((e) => (e as { framesDropped?: number }).framesDropped === 1)).to.equal(true);
        const grown = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed - before;
        expect(grown, 'memory held for the stalled remote').to.be.below(16 * 1024 * 1024);
      } finally {
        await Promise.all([closeAll(), stop()]);
      }
    });

    it('closes an idle pooled connection after keepAlive.idleTimeout', async () => {
      const receiver = await listening(mode);
      const seen = record(receiver);
      const sender = track(transport(mode, { keepAlive: { idleTimeout: 100 } }, 'peer-2'));
      sender.digest(peerAt(receiver), { id: 'idle' }, []);
      await until(() => seen.digests.length === 1);
      expect(receiver.stats().connections.open).to.equal(1);
      await until(() => receiver.stats().connections.open === 0, undefined, 'the client to close its idle connection');
      expect(seen.errors).to.deep.equal([]);
    });

    it('flushes queued frames on close()', async () => {
      const receiver = await listening(mode);
      const seen = record(receiver);
      const sender = transport(mode, { keepAlive: true }, 'peer-2');
      for (let i = 0; i < 100; i++) sender.digest(peerAt(receiver), { id: 'f' }, [{ id: 'f', maxVersionSeen: i }]);
      await new Promise<void>((resolve) => sender.close(resolve));
      await until(() => seen.digests.length === 100);
    });
  });
}

describe('keepAlive by default with TLS', () => {
  afterEach(closeAll);

  for (const mode of ['tls', 'mtls'] as Mode[]) {
    it(`[${mode}] pools when keepAlive is not given: many frames, one connection, one handshake`, async () => {
      const receiver = await listening(mode);
      const seen = record(receiver);
      const sender = track(transport(mode, {}, 'peer-2'));
      for (let i = 0; i < 20; i++) sender.digest(peerAt(receiver), { id: 'd' }, [{ id: 'd', maxVersionSeen: i }]);
      await until(() => seen.digests.length === 20);
      expect(sender.stats().connections.outbound).to.equal(1);
      expect(receiver.stats().connections.accepted).to.equal(1);
    });
  }

  it('[tls] keepAlive: false still opens one connection per message', async () => {
    const receiver = await listening('tls');
    const seen = record(receiver);
    const sender = track(transport('tls', { keepAlive: false }, 'peer-2'));
    for (let i = 0; i < 3; i++) {
      sender.digest(peerAt(receiver), { id: `d${i}` }, []);
      await until(() => seen.digests.length === i + 1);
    }
    expect(sender.stats().connections.outbound).to.equal(3);
    expect(receiver.stats().connections.accepted).to.equal(3);
  });

  it('[plain] stays one connection per message, as 0.1.6', async () => {
    const receiver = await listening('plain');
    const seen = record(receiver);
    const sender = track(transport('plain', {}, 'peer-2'));
    for (let i = 0; i < 3; i++) sender.digest(peerAt(receiver), { id: `d${i}` }, []);
    await until(() => seen.digests.length === 3);
    expect(sender.stats().connections.outbound).to.equal(3);
  });
});

describe('keepAlive [plain] lost connection', () => {
  afterEach(closeAll);

  it('reports ERR_CONNECTION_LOST with the frames it had not flushed, and sends the rest on a new connection', async () => {
    // A receiver that resets its first connection after the first bytes, and reads the second.
    let connections = 0;
    const second: Buffer[] = [];
    const sockets = new Set<import('node:net').Socket>();
    const server = netServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      if (++connections === 1) socket.once('data', () => socket.resetAndDestroy());
      else socket.on('data', (chunk) => second.push(chunk));
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const sender = track(transport('plain', { keepAlive: true }));
      const errors = record(sender).errors;
      const value = 'v'.repeat(4096);
      const n = 1500; // 6 MiB: under maxQueuedBytes, so nothing is refused for backpressure
      for (let i = 0; i < n; i++) sender.deltas({ transport: { host: HOST, port } }, { id: 'lost' }, [['lost', 'k', value, i]]);
      await until(() => errors.length > 0, 5000, 'the lost-connection error');
      expect(errors.map(codeOf)).to.deep.equal(['ERR_CONNECTION_LOST']);
      const lost = errors[0] as unknown as { framesLost: number; framesWritten: number };
      // Frames still queued when it broke go out, in order, on a second connection.
      const last = JSON.stringify([['lost', 'k', value, n - 1]]);
      await until(() => Buffer.concat(second).includes(last), 5000, 'the last frame on the new connection');
      expect(connections).to.equal(2);
      const versions = Buffer.concat(second).toString().split('\r\n').filter(Boolean).map((line) => (JSON.parse(line) as { deltas: Array<[string, string, string, number]> }).deltas[0]![3]);
      expect(versions).to.deep.equal([...versions].sort((a, b) => a - b));
      // Exactly the frames before the first one on the new connection went to the broken one.
      expect(lost.framesWritten).to.equal(versions[0]);
      expect(lost.framesLost).to.be.within(0, lost.framesWritten);
      expect(versions[versions.length - 1]).to.equal(n - 1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await Promise.all([closeAll(), new Promise((resolve) => server.close(resolve))]);
    }
  });
});

describe('keepAlive [mtls] refusal', () => {
  afterEach(closeAll);

  it('reports every queued frame of a refused pooled connection', async () => {
    const receiver = await listening('mtls');
    const seen = record(receiver);
    const sender = track(new TcpTransport({ host: HOST, port: 0, keepAlive: true, tls: { ...pem('rogue-peer'), ca: ca() } }));
    const errors = record(sender).errors;
    for (let i = 0; i < 7; i++) sender.digest(peerAt(receiver), { id: `r${i}` }, []);
    await until(() => errors.length === 1);
    expect(codeOf(errors[0])).to.equal('ERR_TLS_REFUSED');
    expect(errors[0]).to.have.property('framesDropped', 7);
    await sleep(20);
    expect(seen.digests).to.have.length(0);
  });

  it('uses the new certificate after setSecureContext on the next pooled connection', async () => {
    const receiver = await listening('mtls', { tls: { ...tlsFor('mtls')!, ca: [ca(), ca('next-ca')] } });
    const seen = record(receiver);
    const sender = track(transport('mtls', { keepAlive: true, tls: { ...tlsFor('mtls', 'peer-2')!, ca: [ca()] } }));
    const got = new Set<string>();
    receiver.on('digest', (_s, _d, info) => { if (info.certificate) got.add(info.certificate.subject.CN as string); });
    sender.digest(peerAt(receiver), { id: 'before' }, []);
    await until(() => seen.digests.length === 1);
    sender.setSecureContext({ ...pem('next-peer-2'), ca: [ca()] });
    sender.digest(peerAt(receiver), { id: 'after' }, []);
    await until(() => seen.digests.length === 2);
    expect([...got].sort()).to.deep.equal(['next-peer-2', 'peer-2']);
  });
});

describe('keepAlive close()', () => {
  it('leaves no handle open: the process exits by itself', async function () {
    this.timeout(10000);
    const script = `
      const T = require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'index.js'))});
      const r = new T({ host: '127.0.0.1', port: 0 });
      r.listen(() => {
        const s = new T({ host: '127.0.0.1', port: 0, keepAlive: { idleTimeout: 60000 } });
        r.on('digest', () => { s.close(() => r.close(() => console.log('closed'))); });
        s.digest({ transport: { host: '127.0.0.1', port: r.port } }, { id: 'x' }, []);
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => { child.kill(); reject(new Error('the process did not exit within 5 s: a handle is left open')); }, 5000);
      child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    expect(code).to.equal(0);
    expect(out.trim()).to.equal('closed');
  });
});

describe('keepAlive: every frame accounted for when connections are let go of', () => {
  afterEach(closeAll);

  /** Sends `n` 16 KB frames to a server that never reads, and keeps the sender's books. */
  async function flood (sender: TcpTransport, port: number, n: number): Promise<{ ledger: Ledger; errors: Error[] }> {
    const ledger = new Ledger();
    const errors = record(sender).errors;
    sender.on('error', (error) => ledger.reported('s', 'r', error as ReportedError));
    const value = 'v'.repeat(16 * 1024);
    for (let i = 0; i < n; i++) {
      ledger.sent('s', 'r');
      sender.deltas({ transport: { host: HOST, port } }, { id: 'flood' }, [['flood', 'k', value, i]]);
      if (i % 50 === 0) await sleep(1);
    }
    return { ledger, errors };
  }

  it('reports the unflushed frames of a connection retired by a rotation that then breaks', async () => {
    const { server, stop } = await stalledServer('tls');
    const port = (server.address() as AddressInfo).port;
    const sender = track(transport('tls', { keepAlive: { maxQueuedBytes: 64 * 1024 * 1024 } }, 'peer-2'));
    const { ledger, errors } = await flood(sender, port, 400);
    await sleep(200);
    // Rotation: the open connection is let go of with frames still in its buffer.
    sender.setSecureContext({ ca: ca() });
    await sleep(50);
    await stop();
    await until(() => ledger.totals().unbalanced.length === 0, 5000, `every frame accounted for: ${JSON.stringify(ledger.rows())} ${errors.map(codeOf).join()}`);
    expect(errors.map(codeOf)).to.include('ERR_CONNECTION_LOST');
  });

  it('finishes close() when the remote ends its side while frames are still queued, and reports them dropped', async () => {
    // The remote ends its side (it is closing too) after our close() began,
    // with frames still queued behind a full socket: the connection is let go
    // of, and the queued frames can go nowhere. close() must still finish.
    const { server, stop } = await stalledServer('plain');
    try {
      const port = (server.address() as AddressInfo).port;
      const sockets: Array<import('node:net').Socket> = [];
      server.on('connection', (socket: import('node:net').Socket) => sockets.push(socket));
      const sender = transport('plain', { keepAlive: { maxQueuedBytes: 64 * 1024 * 1024 } });
      const { ledger, errors } = await flood(sender, port, 600);
      expect(sockets).to.have.length(1);
      const closed = new Promise<void>((resolve) => sender.close(resolve));
      sockets[0]!.end();
      await closed;
      const dropped = errors.filter((e) => (e as { framesDropped?: number }).framesDropped !== undefined && codeOf(e) === 'ERR_CLOSE_TIMEOUT');
      expect(dropped, errors.map(codeOf).join()).to.have.length(1);
      expect(ledger.totals().unbalanced, JSON.stringify(ledger.rows())).to.deep.equal([]);
    } finally {
      await stop();
    }
  });

  it('reports the frames close() drops when they cannot be flushed in time', async () => {
    const { server, stop } = await stalledServer('plain');
    try {
      const port = (server.address() as AddressInfo).port;
      const sender = transport('plain', { keepAlive: { maxQueuedBytes: 64 * 1024 * 1024 } });
      const { ledger, errors } = await flood(sender, port, 600);
      await new Promise<void>((resolve) => sender.close(resolve));
      const dropped = errors.filter((e) => (e as { framesDropped?: number }).framesDropped !== undefined && codeOf(e) === 'ERR_CLOSE_TIMEOUT');
      expect(dropped, errors.map(codeOf).join()).to.have.length(1);
      expect(ledger.totals().unbalanced, JSON.stringify(ledger.rows())).to.deep.equal([]);
    } finally {
      await stop();
    }
  });
});

describe('keepAlive: maxQueuedBytes counts what queued frames hold', () => {
  afterEach(closeAll);

  /** A TCP server that accepts and never answers: a TLS connection to it never opens, so every frame queues. */
  async function silentServer (): Promise<{ port: number; stop: () => Promise<void> }> {
    const sockets = new Set<import('node:net').Socket>();
    const server = netServer((socket) => { sockets.add(socket); socket.on('error', () => {}); });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    return {
      port: (server.address() as AddressInfo).port,
      stop: async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    };
  }

  // A frame of ASCII is held at one byte a character; one character above
  // U+00FF makes V8 hold the whole frame at two. The budget counts the more
  // of its UTF-8 size and what it holds, so queued memory stays under it.
  for (const [kind, tail] of [['ASCII', 'b'], ['two-byte', '\u4e2d']] as const) {
    it(`queues ${kind} frames up to maxQueuedBytes of memory, exactly`, async () => {
      const { port, stop } = await silentServer();
      try {
        const limit = 256 * 1024;
        const sender = track(transport('tls', { keepAlive: { maxQueuedBytes: limit }, connectTimeout: 5000 }, 'peer-2'));
        const errors = record(sender).errors;
        const message = { deltas: [['q', 'k', 'a'.repeat(5000) + tail, 1]], sender: { id: 'q' } };
        const line = JSON.stringify(message) + '\r\n';
        const utf8 = Buffer.byteLength(line);
        const held = kind === 'ASCII' ? line.length : 2 * line.length;
        const fits = Math.floor(limit / Math.max(utf8, held));
        const n = 2 * fits + 5;
        for (let i = 0; i < n; i++) sender.rpc({ id: 'q', transport: { host: HOST, port } }, message);
        await sleep(20);
        expect(sender.stats().errors.ERR_BACKPRESSURE, 'frames refused').to.equal(n - fits);
        // Reported once for the remote; the rest are counted, and summed in the next report.
        expect(errors.map(codeOf)).to.deep.equal(['ERR_BACKPRESSURE']);
      } finally {
        await Promise.all([closeAll(), stop()]);
      }
    });
  }

  it('[plain] does not count against it what the kernel has already taken (a burst to a reading peer)', async () => {
    const receiver = await listening('plain');
    const seen = record(receiver);
    const sender = track(transport('plain', { keepAlive: { maxQueuedBytes: 64 * 1024 } }, 'peer-2'));
    const errors = record(sender).errors;
    const message = { digest: [], sender: { id: 'burst', blob: 'z'.repeat(20000) } };
    sender.rpc(peerAt(receiver), message);
    await until(() => seen.digests.length === 1, 5000, 'the connection to open');
    // 5 x 20 KB in one tick, each written at once (not corked: 16 KB and more): the
    // kernel takes them as they are written, so none waits in this process.
    for (let i = 0; i < 5; i++) sender.rpc(peerAt(receiver), message);
    await until(() => seen.digests.length === 6, 5000, 'the burst');
    expect(errors).to.deep.equal([]);
  });
});
