/**
 * Every failed send says how many frames it concerns, so that a sender can
 * account for each frame it handed over: dropped before any byte was written,
 * or written and then lost (or maybe lost). Per message, the fault proxy cuts
 * connections mid-frame and the ledger must balance: in plain-once.test.ts.
 * Here: pooled connections, the fault proxy itself, and the receiver ending
 * connections it gave up on so that their senders can tell.
 */
import { expect } from 'chai';
import { connect, createServer, type AddressInfo } from 'node:net';
import { FaultProxy } from '../support/fault-proxy';
import { HOST, closeAll, codeOf, listening, record, sleep, track, transport, until } from '../support/helpers';

describe('FaultProxy', () => {
  afterEach(closeAll);

  /** A raw server that records every byte it receives. */
  async function sink (): Promise<{ port: number; bytes: () => Buffer; closes: () => number; stop: () => Promise<void> }> {
    const chunks: Buffer[] = [];
    let closes = 0;
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', () => {});
      socket.on('close', () => { closes++; });
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    return {
      port: (server.address() as AddressInfo).port,
      bytes: () => Buffer.concat(chunks),
      closes: () => closes,
      stop: () => new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })
    };
  }

  it('forwards every byte in order under latency and a bandwidth cap', async () => {
    const target = await sink();
    const proxy = new FaultProxy({ host: HOST, port: target.port });
    await proxy.listen(HOST);
    try {
      proxy.set({ latency: 5, bandwidth: 512 * 1024 });
      const sender = track(transport('plain', { keepAlive: true }));
      const n = 200;
      for (let i = 0; i < n; i++) sender.digest({ transport: { host: HOST, port: proxy.port } }, { id: 'p' }, [{ id: 'p', maxVersionSeen: i }]);
      await until(() => target.bytes().toString().split('\r\n').length === n + 1, 10000, 'every frame through the proxy');
      const versions = target.bytes().toString().split('\r\n').filter(Boolean).map((line) => (JSON.parse(line) as { digest: Array<{ maxVersionSeen: number }> }).digest[0]!.maxVersionSeen);
      expect(versions).to.deep.equal(Array.from({ length: n }, (_, i) => i));
    } finally {
      await proxy.close();
      await target.stop();
    }
  });

  it('holds every byte while stalled, and lets them through when the stall ends', async () => {
    const receiver = await listening('plain');
    const seen = record(receiver);
    const proxy = new FaultProxy({ host: HOST, port: receiver.port });
    await proxy.listen(HOST);
    try {
      proxy.set({ stall: true });
      const sender = track(transport('plain', { keepAlive: true }));
      for (let i = 0; i < 20; i++) sender.digest({ transport: { host: HOST, port: proxy.port } }, { id: 's' }, []);
      await until(() => proxy.size === 1, undefined, 'the connection through the proxy');
      await sleep(100);
      expect(seen.digests).to.have.length(0);
      proxy.set({});
      await until(() => seen.digests.length === 20, undefined, 'the held frames');
    } finally {
      await proxy.close();
    }
  });

  it('cuts both sides after exactly resetAtByte bytes', async () => {
    const target = await sink();
    const proxy = new FaultProxy({ host: HOST, port: target.port });
    await proxy.listen(HOST);
    try {
      proxy.set({ resetAtByte: 37 });
      const sender = track(transport('plain', { keepAlive: true }));
      const errors = record(sender).errors;
      sender.digest({ transport: { host: HOST, port: proxy.port } }, { id: 'r' }, []);
      sender.digest({ transport: { host: HOST, port: proxy.port } }, { id: 'r' }, []);
      // The server side sees a reset or, when its kernel had already taken every byte, an end.
      await until(() => errors.length > 0 && target.closes() > 0, undefined, 'both sides cut');
      expect(target.bytes().toString()).to.equal((JSON.stringify({ digest: [], sender: { id: 'r' } }) + '\r\n').repeat(2).slice(0, 37));
      expect(codeOf(errors[0])).to.equal('ERR_CONNECTION_LOST');
      expect(proxy.resets).to.equal(1);
    } finally {
      await proxy.close();
      await target.stop();
    }
  });
});

describe('inbound connections dropped mid-handshake or mid-frame', () => {
  afterEach(closeAll);

  /** Connects from a raw socket, writes `bytes`, and says how the receiver closed it. */
  async function closedBy (port: number, bytes: Buffer): Promise<string> {
    const socket = connect({ host: HOST, port });
    return new Promise((resolve) => {
      let how = 'open';
      socket.on('connect', () => socket.write(bytes));
      socket.on('data', () => {});
      socket.on('end', () => { if (how === 'open') how = 'end'; });
      socket.on('error', (error) => { if (how === 'open') how = codeOf(error) ?? 'error'; });
      socket.on('close', () => resolve(how));
    });
  }

  it('resets (not ends) a connection whose frame is unfinished, so its sender learns it was not taken', async () => {
    const receiver = await listening('plain', { frameTimeout: 100 });
    const errors = record(receiver).errors;
    expect(await closedBy(receiver.port, Buffer.from('{"digest":[],"sen'))).to.equal('ECONNRESET');
    expect(errors.map(codeOf)).to.deep.equal(['ERR_FRAME_TIMEOUT']);
  });

  it('resets a TLS connection whose handshake did not finish', async () => {
    const receiver = await listening('mtls', { handshakeTimeout: 100 });
    const errors = record(receiver).errors;
    // A handshake record header that promises bytes it never sends.
    expect(await closedBy(receiver.port, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))).to.equal('ECONNRESET');
    expect(errors.map(codeOf)).to.deep.equal(['ERR_HANDSHAKE_TIMEOUT']);
  });

  it('still ends a connection idle between frames: nothing of it was left unread', async () => {
    const receiver = await listening('plain', { idleTimeout: 100 });
    const seen = record(receiver);
    expect(await closedBy(receiver.port, Buffer.from(JSON.stringify({ digest: [], sender: { id: 'idle' } }) + '\r\n'))).to.equal('end');
    expect(seen.digests).to.have.length(1);
  });
});
