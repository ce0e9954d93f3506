/**
 * One side of a benchmark case, in its own process (started by run.ts, which
 * sends it `{ type: 'case', ... }` over IPC). The orchestrator relays the
 * receiver's running count to the sender, which keeps a fixed number of
 * messages in flight (closed loop). A measured run gets a fresh pair of
 * processes and exits after one case; the smoke run reuses one pair for
 * several cases (`keep`), closing everything between them.
 */
import { createServer as netServer, connect as netConnect, type Socket } from 'node:net';
import { createServer as tlsServer, connect as tlsConnect, createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OldTcpTransport as Old, freePort } from '../scripts/typed-packages';
import TcpTransport = require('../src/index');
import { channels } from '../src/diagnostics';
import { FrameDecoder } from '../src/inbound/frame-decoder';
import { introducePeers } from './introduce';
import { CASES, SIZES, implOf, payloadFor, windowFor, type CaseSpec, type FromWorker, type ToWorker } from './cases';

const HOST = '127.0.0.1';
const CERTS = join(__dirname, '..', '..', 'certs');
const pem = (name: string): { key: string; cert: string } => ({
  key: readFileSync(join(CERTS, `${name}.key`), 'utf8'),
  cert: readFileSync(join(CERTS, `${name}.crt`), 'utf8')
});
const ca = readFileSync(join(CERTS, 'ca.crt'), 'utf8');
/** `npm run bench -- --lift-limits`: per-source and outbound caps lifted, to compare with the defaults. */
const LIFT_LIMITS = process.env.BENCH_LIFT_LIMITS === '1';

function send (message: FromWorker): void {
  // After run.ts lets go of the worker, a last count has nowhere to go: with
  // a callback, a failed write is passed to it instead of thrown at exit.
  if (process.connected) process.send!(message, undefined, {}, () => {});
}

function now (): number {
  return performance.timeOrigin + performance.now();
}

function tlsOptions (spec: CaseSpec, peer: string): Record<string, unknown> | undefined {
  if (spec.mode === 'plain') return undefined;
  return { ...pem(peer), ca, ...(spec.mode === 'mtls' ? { requestCert: true } : {}), sessionCache: spec.resume ? 256 : 0 };
}

/** Handles the orchestrator's messages for the case in progress. */
let handler: ((message: ToWorker) => void) | undefined;

/**
 * After 'stop': exit, or (keep) close what the case opened and wait for the
 * next case. A measured run's worker exits when the orchestrator lets go of
 * it, once both sides have reported: a receiver that exited at once would
 * reset the sender's connections in flight before the sender had counted its
 * errors (a busy sender reads its 'stop' late).
 */
function finished (keep: boolean, cleanup: () => Promise<void>): void {
  handler = undefined;
  if (!keep) {
    process.once('disconnect', () => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
    return;
  }
  cleanup().then(() => send({ type: 'idle' }), (error: unknown) => {
    process.stderr.write(`bench worker: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}

const closeServer = (server: { close (cb: () => void): unknown }): Promise<void> => new Promise((resolve) => { server.close(() => resolve()); });

async function receiver (spec: CaseSpec, sizeIndex: number, windowOverride: number | undefined, keep: boolean): Promise<void> {
  let total = 0;
  let measuring = false;
  let count = 0;
  let started = 0;
  let cpu0 = process.cpuUsage();
  const latencies: number[] = [];
  // The running count goes to the sender (through run.ts) every `step`
  // messages: an IPC write costs tens of µs of CPU here, so it is paid per
  // message alike in every case. (A report every 2 ms, as before, cost a
  // fixed CPU per second, which lands per message unevenly: more on the
  // slower case, and a busier event loop ran the timer less often. It was
  // up to a fifth of a bare receiver's CPU.) An eighth of the sender's
  // window keeps the window from running dry; a slow timer sends the tail.
  const step = Math.max(1, Math.min(32, Math.floor((windowOverride ?? windowFor(spec, SIZES[sizeIndex]!)) / 8)));
  let reported = 0;
  const report = (): void => {
    reported = total;
    send({ type: 'received', count: total, measured: measuring ? count : 0 });
  };
  const onMessage = (sender: unknown): void => {
    total++;
    if (measuring) count++;
    if (total - reported >= step) report();
    if (!measuring) return;
    const t = (sender as { t?: number }).t;
    if (typeof t === 'number') latencies.push(now() - t);
  };

  let port: number;
  let cleanup: () => Promise<void>;
  const impl = implOf(spec, 'receiver');
  if (impl === 'old') {
    port = await freePort();
    const t = new Old({ host: HOST, port });
    t.on('error', () => {});
    t.on('deltas', onMessage);
    t.on('digest', onMessage);
    await new Promise<void>((resolve) => t.listen(resolve));
    cleanup = () => new Promise((resolve) => t.close(() => resolve()));
  } else if (impl === 'ours') {
    const tls = tlsOptions(spec, 'peer-1');
    // Default options: one sender on one address is the only source, so the
    // per-source limits never bite (they apply under contention only).
    // `--lift-limits` (BENCH_LIFT_LIMITS=1) lifts them, for the comparison.
    const t = new TcpTransport({ host: HOST, port: 0, ...(LIFT_LIMITS || spec.liftLimits === true ? { connectionsPerSecondPerSource: Infinity, maxConnectionsPerSource: Infinity } : {}), ...(tls ? { tls } : {}) });
    t.on('error', () => {});
    t.on('deltas', onMessage);
    t.on('digest', onMessage);
    await new Promise<void>((resolve) => t.listen(resolve));
    port = t.port;
    cleanup = () => new Promise((resolve) => t.close(resolve));
  } else {
    // The floor: Node's sockets, lines split and JSON.parse, nothing else.
    const sockets = new Set<Socket>();
    const onSocket = (socket: Socket): void => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const frame of decoder.push(chunk)) onMessage((JSON.parse(frame.toString('utf8')) as { sender: unknown }).sender);
      });
      socket.on('error', () => {});
    };
    const server = spec.mode === 'plain' ? netServer(onSocket) : tlsServer({ ...pem('peer-1'), ca }, onSocket);
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    port = (server.address() as { port: number }).port;
    cleanup = () => {
      for (const socket of sockets) socket.destroy();
      return closeServer(server);
    };
  }

  const reporter = setInterval(() => {
    if (total !== reported) report();
  }, 20).unref();

  handler = (message: ToWorker) => {
    if (message.type === 'measure') {
      measuring = true;
      count = 0;
      latencies.length = 0;
      started = now();
      cpu0 = process.cpuUsage();
    } else if (message.type === 'stop') {
      const ms = now() - started;
      const cpu = process.cpuUsage(cpu0);
      latencies.sort((a, b) => a - b);
      const at = (q: number): number => latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
      send({ type: 'result', count, ms, p50: at(0.5), p99: at(0.99), peakRss: process.resourceUsage().maxRSS * 1024, cpuMs: (cpu.user + cpu.system) / 1000 });
      clearInterval(reporter);
      finished(keep, cleanup);
    }
  };
  send({ type: 'ready', port });
}

async function sender (spec: CaseSpec, sizeIndex: number, port: number, windowOverride: number | undefined, keep: boolean): Promise<void> {
  const size = SIZES[sizeIndex]!;
  const body = payloadFor(size);
  const window = windowOverride ?? windowFor(spec, size);
  const remote = { id: 'receiver', transport: { host: HOST, port } };
  const senderInfo = { id: 'bench', transport: { host: HOST, port: 1 } };
  let errors = 0;
  let sendOne: () => boolean;
  /** Called when a bare socket can take more (set once the pump exists). */
  let onRoom = (): void => {};
  let cork: ((on: boolean) => void) | undefined;
  let cleanup = (): Promise<void> => Promise.resolve();
  const message = (): unknown => ({ ...body, sender: { ...senderInfo, t: now() } });

  // Proven membership (on by default) holds back a digest entry naming an id
  // the receiver has no proof of, and probes it: that is the cost of made-up
  // peers, not of gossip. In a cluster each peer a digest names has been in
  // touch before long, so each does so here once, before anything is measured.
  if (implOf(spec, 'receiver') === 'ours' && body.digest !== undefined) await introducePeers(port, body.digest, tlsOptions(spec, 'peer-2'));

  const impl = implOf(spec, 'sender');
  if (impl === 'old') {
    const t = new Old({ host: HOST, port: 1 });
    t.on('error', () => { errors++; });
    sendOne = () => { t.rpc(remote, message()); return true; };
  } else if (impl === 'ours') {
    const tls = tlsOptions(spec, 'peer-2');
    // Default options (128 in flight fit under outbound.maxPerDestination, 256);
    // --lift-limits lifts the outbound caps too.
    const t = new TcpTransport({ host: HOST, port: 0, keepAlive: spec.keepAlive, ...(LIFT_LIMITS || spec.liftLimits === true ? { outbound: { maxPerDestination: 100000, maxConnections: 100000 } } : {}), ...(tls ? { tls } : {}) });
    t.on('error', () => { errors++; });
    sendOne = () => { t.rpc(remote, message()); return true; };
    cleanup = () => new Promise((resolve) => t.close(resolve));
  } else if (!spec.keepAlive && spec.mode === 'plain') {
    // The floor of one connection per message: connect, write, end, as 0.1.6 does, and nothing else.
    sendOne = () => {
      const socket = netConnect({ host: HOST, port }, () => socket.end(JSON.stringify(message()) + '\r\n'));
      socket.on('error', () => { errors++; });
      return true;
    };
  } else if (!spec.keepAlive) {
    // The floor of one TLS connection per message: one secure context for
    // all, connect (checking the receiver's certificate, as any TLS client
    // must), write, end; with `resume`, each connection offers the latest
    // session the receiver gave.
    const secureContext = createSecureContext({ ca });
    let session: Buffer | undefined;
    sendOne = () => {
      const socket = tlsConnect({ host: HOST, port, secureContext, ...(spec.resume && session ? { session } : {}) }, () => socket.end(JSON.stringify(message()) + '\r\n'));
      if (spec.resume) socket.once('session', (s: Buffer) => { session = s; });
      socket.on('error', () => { errors++; });
      return true;
    };
  } else {
    const socket = spec.mode === 'plain'
      ? netConnect({ host: HOST, port, noDelay: true })
      : tlsConnect({ host: HOST, port, ca, ...pem('peer-2') });
    socket.setNoDelay(true);
    socket.on('error', () => { errors++; });
    cleanup = () => { socket.destroy(); return Promise.resolve(); };
    await new Promise((resolve) => socket.once(spec.mode === 'plain' ? 'connect' : 'secureConnect', resolve));
    let waiting = false;
    socket.on('drain', () => { waiting = false; onRoom(); });
    // Each burst goes out corked, as the pooled transport does: the limit is
    // the best a bare socket can do, not one syscall per frame.
    cork = (on) => { if (on) socket.cork(); else socket.uncork(); };
    // The raw socket respects its own backpressure on top of the window.
    sendOne = () => {
      if (waiting) return false;
      if (!socket.write(JSON.stringify(message()) + '\r\n')) waiting = true;
      return true;
    };
  }

  let sent = 0;
  let received = 0;
  let running = true;
  let scheduled = false;
  let cpu0 = process.cpuUsage();
  // Sends while the window has room, 64 at a time, yielding between bursts.
  // With the window full it waits for the receiver's next count (or, on a
  // bare socket, for 'drain') instead of polling: a polling sender would burn
  // a core that the receiver and the kernel need on a 2-core machine, and
  // count in the CPU per message.
  const schedule = (): void => {
    if (scheduled || !running) return;
    scheduled = true;
    setImmediate(pump);
  };
  const pump = (): void => {
    scheduled = false;
    if (!running) return;
    let burst = 0;
    cork?.(true);
    // A message that failed (an error) will never be counted by the receiver: it leaves the window.
    while (sent - received - errors < window && burst < 64) {
      if (!sendOne()) break;
      sent++;
      burst++;
    }
    cork?.(false);
    if (burst === 64) schedule();
  };
  onRoom = schedule;
  handler = (msg: ToWorker) => {
    if (msg.type === 'received') {
      // The receiver counts from its start; the sender's count is what it handed over.
      received = msg.count;
      if (received > sent) sent = received;
      schedule();
    } else if (msg.type === 'start') {
      pump();
    } else if (msg.type === 'measure') {
      cpu0 = process.cpuUsage();
    } else if (msg.type === 'stop') {
      running = false;
      const cpu = process.cpuUsage(cpu0);
      send({ type: 'sent', errors, cpuMs: (cpu.user + cpu.system) / 1000 });
      finished(keep, cleanup);
    }
  };
  send({ type: 'ready', port });
}

/** Someone listening on every lifecycle channel, doing nothing with it (the diagnostics case). */
const noop = (): void => {};
function subscribe (on: boolean): void {
  for (const channel of Object.values(channels)) {
    if (on) channel.subscribe(noop);
    else channel.unsubscribe(noop);
  }
}

if (!process.send) {
  process.stderr.write('bench worker: started by run.js, which sends it its cases over IPC\n');
  process.exit(2);
}
process.on('message', (message: ToWorker) => {
  if (message.type !== 'case') {
    handler?.(message);
    return;
  }
  const spec = CASES[message.caseIndex]!;
  subscribe(spec.diagnostics === true);
  const run = message.role === 'receiver'
    ? receiver(spec, message.sizeIndex, message.window, message.keep)
    : sender(spec, message.sizeIndex, message.port!, message.window, message.keep);
  run.catch((error: unknown) => {
    process.stderr.write(`bench worker: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
});
