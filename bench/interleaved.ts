/**
 * Per-message plain, each side against the same bare peer, interleaved in
 * one pair of processes (`npm run bench -- --only interleaved`): the figure
 * issue 24's decision is about, measured so that the noise of a shared
 * machine hits every implementation alike.
 *
 * One receiver process holds three receivers at once (a bare one: Node's
 * sockets, line splitting and JSON.parse; this transport; 0.1.6), one
 * sender process three senders (a bare connect/write/end; this transport;
 * 0.1.6). Each round runs five blocks of BLOCK messages in turn, in an order
 * that alternates from round to round: bare to bare (the floor of both
 * sides), a bare sender to this transport's and to 0.1.6's receiver, and
 * this transport's and 0.1.6's sender to the bare receiver. Each process
 * reports its CPU time over each block; a side's cost is its CPU per message,
 * and what an implementation adds is the median over the rounds of its
 * per-round difference from the bare side of the same round.
 *
 * The senders keep 128 messages in flight on the receiver's count, relayed
 * every few messages (as worker.ts does); a message a sender saw fail leaves
 * the window. Every transport runs with its default options, as in the
 * throughput cases (one sender is the only source: the per-source limits
 * apply under contention only); `--lift-limits` lifts the per-source and
 * outbound caps.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import TcpTransport = require('../src/index');
import { FrameDecoder } from '../src/inbound/frame-decoder';
import { OldTcpTransport, freePort } from '../scripts/typed-packages';
import { payloadFor } from './cases';
import { introducePeers } from './introduce';

export type SideImpl = 'bare' | 'ours' | 'old';
export const SIDE_IMPLS: SideImpl[] = ['bare', 'ours', 'old'];
/** CPU µs per message of each implementation of each side, one round. */
export interface InterleavedRound {
  sender: Record<SideImpl, number>;
  receiver: Record<SideImpl, number>;
}

const HOST = '127.0.0.1';
const WINDOW = 128;
/** `npm run bench -- --lift-limits`: per-source and outbound caps lifted. */
const LIFT_LIMITS = process.env.BENCH_LIFT_LIMITS === '1';
/** The receiver's count goes to the sender every STEP messages. */
const STEP = 16;

type Msg =
  | { type: 'ports'; ports: Record<SideImpl, number> }
  | { type: 'block'; impl: SideImpl; port: number }
  | { type: 'count'; count: number }
  | { type: 'end' }
  | { type: 'introduce'; port: number }
  | { type: 'introduced' }
  | { type: 'cpu'; us: number; count: number; errors: number }
  | { type: 'rounds'; rounds: InterleavedRound[]; errors: number };

function send (message: Msg): void {
  if (process.connected) process.send!(message, undefined, {}, () => {});
}

/** The three receivers, one block at a time: counts, and CPU time per block. */
async function receiverRole (): Promise<void> {
  let count = 0;
  let reported = 0;
  let cpu0 = process.cpuUsage();
  const onMessage = (): void => {
    if (++count - reported >= STEP) {
      reported = count;
      send({ type: 'count', count });
    }
  };
  const sockets = new Set<Socket>();
  const bare = netServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        JSON.parse(frame.toString('utf8'));
        onMessage();
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => bare.listen(0, HOST, resolve));
  const ours = new TcpTransport({ host: HOST, port: 0, ...(LIFT_LIMITS ? { connectionsPerSecondPerSource: Infinity, maxConnectionsPerSource: Infinity } : {}) });
  ours.on('error', () => {});
  ours.on('digest', onMessage);
  await new Promise<void>((resolve) => ours.listen(resolve));
  const oldPort = await freePort();
  const old = new OldTcpTransport({ host: HOST, port: oldPort });
  old.on('error', () => {});
  old.on('digest', onMessage);
  await new Promise<void>((resolve) => old.listen(resolve));
  process.on('message', (message: Msg) => {
    if (message.type === 'block') {
      count = 0;
      reported = 0;
      cpu0 = process.cpuUsage();
    } else if (message.type === 'end') {
      const cpu = process.cpuUsage(cpu0);
      send({ type: 'cpu', us: cpu.user + cpu.system, count, errors: 0 });
    }
  });
  process.once('disconnect', () => process.exit(0));
  send({ type: 'ports', ports: { bare: (bare.address() as { port: number }).port, ours: ours.port, old: oldPort } });
}

/** The three senders, one block at a time, each to the port it is given. */
function senderRole (): void {
  const body = payloadFor('1 KB digest');
  const message = (): unknown => ({ ...body, sender: { id: 'bench', transport: { host: HOST, port: 1 }, t: Date.now() } });
  let errors = 0;
  const ours = new TcpTransport({ host: HOST, port: 0, ...(LIFT_LIMITS ? { outbound: { maxPerDestination: 100000, maxConnections: 100000 } } : {}) });
  ours.on('error', () => { errors++; });
  const old = new OldTcpTransport({ host: HOST, port: 1 });
  old.on('error', () => { errors++; });
  let sendOne: () => void = () => {};
  let sent = 0;
  let received = 0;
  let running = false;
  let scheduled = false;
  let cpu0 = process.cpuUsage();
  let errors0 = 0;
  const pump = (): void => {
    scheduled = false;
    let burst = 0;
    while (running && sent - received - (errors - errors0) < WINDOW && burst < 64) {
      sendOne();
      sent++;
      burst++;
    }
    if (running && burst === 64 && !scheduled) {
      scheduled = true;
      setImmediate(pump);
    }
  };
  process.on('message', (msg: Msg) => {
    if (msg.type === 'introduce') {
      introducePeers(msg.port, body.digest!, undefined).then(() => send({ type: 'introduced' }), () => send({ type: 'introduced' }));
    } else if (msg.type === 'block') {
      const port = msg.port;
      const remote = { id: 'receiver', transport: { host: HOST, port } };
      if (msg.impl === 'bare') {
        sendOne = () => {
          const socket = netConnect({ host: HOST, port }, () => socket.end(JSON.stringify(message()) + '\r\n'));
          socket.on('error', () => { errors++; });
        };
      } else if (msg.impl === 'ours') sendOne = () => ours.rpc(remote, message());
      else sendOne = () => old.rpc(remote, message());
      sent = 0;
      received = 0;
      errors0 = errors;
      running = true;
      cpu0 = process.cpuUsage();
      pump();
    } else if (msg.type === 'count') {
      received = msg.count;
      pump();
    } else if (msg.type === 'end') {
      running = false;
      const cpu = process.cpuUsage(cpu0);
      send({ type: 'cpu', us: cpu.user + cpu.system, count: sent, errors: errors - errors0 });
    }
  });
  process.once('disconnect', () => process.exit(0));
  send({ type: 'ports', ports: { bare: 0, ours: 0, old: 0 } });
}

function next<T extends Msg['type']> (child: ChildProcess, type: T): Promise<Extract<Msg, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`interleaved: no '${type}' within 60 s`)), 60000);
    const on = (message: Msg): void => {
      if (message.type !== type) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(message as Extract<Msg, { type: T }>);
    };
    child.on('message', on);
  });
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `rounds` rounds of `block` messages per block; returns each round's CPU per message. */
async function orchestrate (rounds: number, block: number): Promise<{ rounds: InterleavedRound[]; errors: number }> {
  const receiver = fork(__filename, ['receiver'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const sender = fork(__filename, ['sender'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const { ports } = await next(receiver, 'ports');
    await next(sender, 'ports');
    receiver.on('message', (message: Msg) => {
      if (message.type === 'count' && sender.connected) sender.send(message);
    });
    // The peers the digest names get in touch with this transport's receiver
    // once, as in a cluster (worker.ts, introducePeers): proven membership
    // would otherwise hold them back and probe them on every message.
    const introduced = next(sender, 'introduced');
    sender.send({ type: 'introduce', port: ports.ours } satisfies Msg);
    await introduced;
    const blocks: Array<[SideImpl, SideImpl]> = [['bare', 'bare'], ['bare', 'ours'], ['bare', 'old'], ['ours', 'bare'], ['old', 'bare']];
    const out: InterleavedRound[] = [];
    let errors = 0;
    // Round 0 warms every implementation up (V8 compiles the hot paths) and is not counted.
    for (let round = 0; round <= rounds; round++) {
      const result: InterleavedRound = { sender: { bare: 0, ours: 0, old: 0 }, receiver: { bare: 0, ours: 0, old: 0 } };
      const order = round % 2 === 0 ? blocks : [...blocks].reverse();
      for (const [from, to] of order) {
        receiver.send({ type: 'block', impl: to, port: 0 } satisfies Msg);
        const reached = new Promise<void>((resolve) => {
          const on = (message: Msg): void => {
            if (message.type === 'count' && message.count >= block) {
              receiver.off('message', on);
              resolve();
            }
          };
          receiver.on('message', on);
        });
        sender.send({ type: 'block', impl: from, port: ports[to] } satisfies Msg);
        await reached;
        const cpus = Promise.all([next(receiver, 'cpu'), next(sender, 'cpu')]);
        sender.send({ type: 'end' } satisfies Msg);
        receiver.send({ type: 'end' } satisfies Msg);
        const [r, s] = await cpus;
        errors += s.errors;
        // Messages still in flight (at most WINDOW) would land in the next block: let them land.
        await settle(100);
        // Both sides per message delivered in the block.
        if (from === 'bare') result.receiver[to] = r.us / r.count;
        if (to === 'bare') result.sender[from] = s.us / r.count;
      }
      if (round > 0) out.push(result);
    }
    return { rounds: out, errors };
  } finally {
    for (const child of [receiver, sender]) if (child.connected) child.disconnect();
  }
}

const role = process.argv[2];
if (role === 'receiver') {
  receiverRole().catch((error: unknown) => {
    process.stderr.write(`interleaved receiver: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
} else if (role === 'sender') {
  senderRole();
} else if (require.main === module) {
  if (!process.send) {
    process.stderr.write('usage: interleaved.js <rounds> <messages per block> (started by run.js)\n');
    process.exit(2);
  }
  orchestrate(Number(process.argv[2] ?? 10), Number(process.argv[3] ?? 2000)).then(({ rounds, errors }) => {
    process.send!({ type: 'rounds', rounds, errors } satisfies Msg, () => process.exit(0));
  }, (error: unknown) => {
    process.stderr.write(`interleaved: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
