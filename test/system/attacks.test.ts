/**
 * Attacks as an attacker would run them: the attacker in a process of its own
 * (bench/attacker.ts, forked), from loopback addresses of its own
 * (127.0.0.2 and up), the legitimate peer a transport on 127.0.0.1, and the
 * victim a transport in this process. Each test asserts what the legitimate
 * peer experiences (every message delivered) and what the victim spends
 * (connections held, live memory), never how fast: the figures with times
 * (delay, event-loop stalls, CPU) come from `node dist/bench/attacks.js`.
 */
import { expect } from 'chai';
import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import type { AttackPlan, AttackReport } from '../../bench/attacker';
import { Gossipmonger, stopGossip, type Monger } from '../../scripts/typed-packages';
import type { TransportOptions } from '../../src/options';
import {
  HOST, ca, closeAll, codeOf, exposeGc, listening, next, peerAt, pem, rawClient, record, sleep, track, transport, until, type Mode, type TcpTransport
} from '../support/helpers';

const ATTACKER = join(__dirname, '..', '..', 'bench', 'attacker.js');

interface Attack {
  child: ChildProcess;
  /** Resolves when a bounded attack (poison, one-byte) has sent everything. */
  finished: Promise<void>;
  /** one-byte with holdLast: resolves when every connection waits before its last byte. */
  holding: Promise<void>;
  stop (): Promise<AttackReport>;
}

/** Forks an attacker against `port`; resolves once it is running. */
async function attack (plan: Omit<AttackPlan, 'port'>, port: number): Promise<Attack> {
  const child = fork(ATTACKER, [JSON.stringify({ ...plan, port, duration: 20000 })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let report: AttackReport | undefined;
  let onFinished: () => void = () => {};
  const finished = new Promise<void>((resolve) => { onFinished = resolve; });
  let onHolding: () => void = () => {};
  const holding = new Promise<void>((resolve) => { onHolding = resolve; });
  child.on('message', (message: { type: string }) => {
    if (message.type === 'done') report = message as AttackReport;
    if (message.type === 'finished') onFinished();
    if (message.type === 'holding') onHolding();
  });
  await next(child, 'message', 5000);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    finished,
    holding,
    async stop (): Promise<AttackReport> {
      if (child.exitCode === null) child.send('stop');
      await exited;
      return report!;
    }
  };
}

/** TLS options for an attacker in `mode`: trusts the CA; in mutual TLS it is a member (peer-3's certificate). */
function attackerTls (mode: Mode): AttackPlan['tls'] {
  if (mode === 'plain') return undefined;
  return { ca: ca(), ...(mode === 'mtls' ? pem('peer-3') : {}) };
}

/** Samples what the victim spends while an attack runs. */
class Meter {
  peakOpen = 0;
  peakMemory = 0;
  readonly base: number;
  private readonly timer: NodeJS.Timeout;
  readonly delay = monitorEventLoopDelay({ resolution: 10 });

  constructor (private readonly victim: TcpTransport) {
    exposeGc()();
    this.base = Meter.memory();
    this.delay.enable();
    this.timer = setInterval(() => this.sample(), 5);
  }

  /** Live memory: heap plus Buffers. */
  static memory (): number {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  }

  sample (): void {
    this.peakOpen = Math.max(this.peakOpen, this.victim.stats().connections.open);
    this.peakMemory = Math.max(this.peakMemory, Meter.memory() - this.base);
  }

  stop (): { peakOpen: number; peakMemoryMiB: number; maxDelayMs: number } {
    clearInterval(this.timer);
    this.delay.disable();
    this.sample();
    return { peakOpen: this.peakOpen, peakMemoryMiB: this.peakMemory / 1048576, maxDelayMs: this.delay.max / 1e6 };
  }
}

/**
 * The legitimate peer: a transport on 127.0.0.1 sending `count` digests,
 * one every `every` ms. Resolves once all arrived (or fails the test).
 */
async function legitimate (mode: Mode, victim: TcpTransport, count = 6, every = 30, id = 'legit'): Promise<void> {
  const peer = track(transport(mode, {}, 'peer-2'));
  peer.on('error', () => {});
  let delivered = 0;
  const onDigest = (from: { id: string }): void => { if (from.id === id) delivered++; };
  victim.on('digest', onDigest);
  try {
    for (let i = 0; i < count; i++) {
      peer.digest(peerAt(victim), { id, transport: { host: HOST, port: 1 } }, [{ id, maxVersionSeen: i }]);
      await sleep(every);
    }
    await until(() => delivered === count, 15000, `the legitimate peer's ${count} digests (${delivered} arrived)`);
  } finally {
    victim.removeListener('digest', onDigest);
  }
}

function report (what: string, figures: Record<string, unknown>): void {
  if (process.env.REPORT_ATTACKS) console.log(`      ${what}: ${JSON.stringify(figures)}`);
}

/** Small limits keep the tests fast; the attacks are the same at the defaults (bench/attacks.ts). */
const SMALL: TransportOptions = { maxConnections: 16, frameTimeout: 1000, idleTimeout: 5000, handshakeTimeout: 1000 };

describe('attacks (attacker in its own process, from its own addresses)', function () {
  this.timeout(30000);
  afterEach(closeAll);

  for (const mode of ['plain', 'tls', 'mtls'] as const) {
    it(`[${mode}] one source holding every slot mid-frame, dripping and reconnecting, does not lock a legitimate peer out`, async () => {
      const victim = await listening(mode, SMALL);
      const seen = record(victim);
      const meter = new Meter(victim);
      const attacker = await attack({ kind: 'drip', sources: ['127.0.0.2'], connections: 24, dripMs: 50, tls: attackerTls(mode) }, victim.port);
      try {
        await until(() => victim.stats().connections.open >= 16, 15000, 'the attacker filling every slot');
        await legitimate(mode, victim);
      } finally {
        const done = await attacker.stop();
        const figures = meter.stop();
        report(`lock-out [${mode}]`, { ...figures, attacker: done, refusals: victim.stats().refusals });
        expect(figures.peakOpen).to.be.at.most(16);
      }
      expect(victim.stats().refusals.evicted, 'attacker connections evicted').to.be.above(0);
      // Aggregated: a report per source per interval, not one per eviction.
      expect(seen.errors.filter((e) => codeOf(e) === 'ERR_CONNECTIONS_REFUSED').length).to.be.at.most(2);
    });
  }

  for (const mode of ['plain'] as const) {
    it(`[${mode}] four sources dripping at once do not lock a legitimate peer out either`, async () => {
      const victim = await listening(mode, SMALL);
      record(victim);
      const meter = new Meter(victim);
      const attacker = await attack({ kind: 'drip', sources: ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'], connections: 8, dripMs: 50, tls: attackerTls(mode) }, victim.port);
      try {
        await until(() => victim.stats().connections.open >= 16, 15000, 'the attackers filling every slot');
        await legitimate(mode, victim);
      } finally {
        await attacker.stop();
        const figures = meter.stop();
        report(`four sources [${mode}]`, figures);
        expect(figures.peakOpen).to.be.at.most(16);
      }
    });
  }

  // Empty lines reach the decoder the same way in every mode: plain shows it without a certificate.
  it('[plain] connections sending only empty lines are closed at idleTimeout and never delivered', async () => {
    const victim = await listening('plain', { ...SMALL, idleTimeout: 600 });
    const seen = record(victim);
    // An empty line every 100 ms: a bare "\n", and a "\r" whose "\n" follows in a later write.
    const attacker = await attack({ kind: 'blank-lines', sources: ['127.0.0.13'], connections: 4, dripMs: 100 }, victim.port);
    try {
      await until(() => seen.errors.filter((e) => codeOf(e) === 'ERR_IDLE_TIMEOUT').length >= 4, 10000, 'the blank-line holders closed at idleTimeout');
    } finally {
      const done = await attacker.stop();
      report('blank lines [plain]', { attacker: done });
    }
    expect(seen.errors.map(codeOf).filter((code) => code !== 'ERR_IDLE_TIMEOUT')).to.deep.equal([]);
    expect(seen.deltas.length + seen.digests.length).to.equal(0);
  });

  it('[plain] a reconnect storm from one source is refused by rate before it is read', async () => {
    const victim = await listening('plain', { ...SMALL, maxConnectionsPerSource: 1000 });
    const seen = record(victim);
    const meter = new Meter(victim);
    const attacker = await attack({ kind: 'drip', sources: ['127.0.0.6'], connections: 32, dripMs: 0 }, victim.port);
    let done: AttackReport;
    try {
      await until(() => (victim.stats().refusals['source-rate'] ?? 0) > 200, 15000, 'the storm being refused');
      await legitimate('plain', victim);
    } finally {
      done = await attacker.stop();
      report('reconnect storm [plain]', { ...meter.stop(), attacker: done, refusals: victim.stats().refusals });
    }
    const { accepted } = victim.stats().connections;
    // Admitted: the legitimate peer's 6, and the attacker's bucket (50 at once, 50/s after).
    expect(accepted).to.be.below(6 + 50 + 50 * 20);
    expect(victim.stats().refusals['source-rate']).to.be.above(accepted);
    expect(seen.errors.filter((e) => codeOf(e) === 'ERR_CONNECTIONS_REFUSED').length).to.be.at.most(2);
  });

  for (const mode of ['tls', 'mtls'] as const) {
    it(`[${mode}] a handshake flood from one source gets few handshakes: the rest are refused before the handshake`, async () => {
      // The rate is set well below what the attacker's process manages even
      // when starved of CPU (25 to 40 connections a second beside two busy
      // loops, where at the default 50/s it was refused by rate so rarely that
      // the test timed out waiting): whether it is refused then does not hinge
      // on how fast the machine lets it attack.
      const rate = 10;
      const victim = await listening(mode, { ...SMALL, connectionsPerSecondPerSource: rate });
      record(victim);
      const meter = new Meter(victim);
      const started = Date.now();
      // 64 at once: on a loaded machine each admitted handshake is slow, and the flood must not wait on them.
      const attacker = await attack({ kind: 'handshake', sources: ['127.0.0.7'], connections: 64, tls: attackerTls(mode) }, victim.port);
      let done: AttackReport;
      try {
        await until(() => (victim.stats().refusals['source-rate'] ?? 0) > 100, 15000, 'the flood being refused');
        await legitimate(mode, victim);
      } finally {
        done = await attacker.stop();
        report(`handshake flood [${mode}]`, { ...meter.stop(), attacker: done, refusals: victim.stats().refusals });
      }
      const seconds = (Date.now() - started) / 1000;
      const { accepted } = victim.stats().connections;
      // The token bucket's invariant (not a speed): the attacker got at most `rate` at once and
      // `rate` a second after, and only connections let in ever reached a handshake.
      expect(accepted - 6, 'attacker connections let in').to.be.at.most(rate + Math.ceil(rate * seconds));
      expect(done.handshakes).to.be.at.most(accepted);
      expect(victim.stats().refusals['source-rate']).to.be.above(100);
    });
  }

  it('[tls] a frame sent one byte per TLS record is held in bounded memory, and delivered', async () => {
    const frameBytes = 32 * 1024;
    const victim = await listening('tls', { maxFrameSize: 64 * 1024 });
    const seen = record(victim);
    const gc = exposeGc();
    const meter = new Meter(victim);
    // Two connections (each writes one byte, waits for it to go out, writes the
    // next), each stopping before its frame's last byte: the victim then holds
    // both frames unfinished, at their largest.
    const attacker = await attack({ kind: 'one-byte', sources: ['127.0.0.8'], connections: 2, frameBytes, holdLast: true, tls: attackerTls('tls') }, victim.port);
    let retainedMiB: number;
    try {
      await attacker.holding;
      await until(() => victim.stats().bytes.in >= 2 * frameBytes, 15000, 'every byte but the last read');
      // What the victim retains, not what it has allocated: garbage waiting for
      // the next collection (the sampled peak includes up to a young
      // generation of it, more on a loaded machine) is not held memory.
      gc();
      retainedMiB = (Meter.memory() - meter.base) / 1048576;
      attacker.child.send('release');
      await attacker.finished;
      await until(() => seen.deltas.length === 2, 15000, 'both frames');
      await legitimate('tls', victim, 3);
    } finally {
      const done = await attacker.stop();
      const figures = meter.stop();
      report('one-byte records [tls]', { ...figures, retainedMiB: retainedMiB!, attacker: done });
    }
    // Held: two growable buffers of at most 64 KiB (32 KiB frames, doubling)
    // plus two TLS connections' state: 0.24 to 0.28 MiB measured. A decoder
    // keeping one Buffer per record holds ~190 bytes per byte instead: 12.3 MiB
    // measured for these 2 x 32 KiB. The bound, 4 MiB, is 14 times what is
    // held (room for whatever else the process keeps meanwhile, the rest of the
    // suite included) and a third of the per-record figure, which it refuses.
    expect(retainedMiB!).to.be.below(4);
    expect(((seen.deltas[0]![1] as unknown[][])[0]![2] as string).length).to.be.above(frameBytes - 100);
  });

  for (const [mode, options] of [['plain', {}], ['mtls', { authorize: 'sender-id' }]] as const) {
    it(`[${mode}${mode === 'mtls' ? ' + sender-id' : ''}] digests naming thousands of fake peers cannot grow gossipmonger past maxPeers, nor stop it gossiping`, async () => {
      const maxPeers = 300;
      // Under 'sender-id' the legitimate peer speaks as the id its certificate (peer-2) names.
      const legitId = mode === 'mtls' ? 'peer-2' : 'legit';
      const victim = await listening(mode, { maxPeers, ...(mode === 'mtls' ? { tls: { ...pem('peer-1'), ca: ca(), requestCert: true, ...options } } : {}) });
      const seen = record(victim);
      const monger: Monger = new Gossipmonger({ id: 'victim', transport: { host: HOST, port: victim.port } }, { transport: victim, GOSSIP_INTERVAL: 60000 });
      monger.on('error', () => {});
      try {
        // The legitimate peer is known before the attack (a new peer cannot join past the cap: see SECURITY.md).
        await legitimate(mode, victim, 1, 50, legitId);
        const attacker = await attack({ kind: 'poison', sources: ['127.0.0.9'], connections: 1, messages: 8, entries: 1000, senderId: mode === 'mtls' ? 'peer-3' : undefined, tls: attackerTls(mode) }, victim.port);
        await attacker.finished;
        const done = await attacker.stop();
        await until(() => victim.stats().peers.dropped + victim.stats().peers.known >= 8 * 1000, 15000, 'every poisoned entry seen');
        // A second, fat variant: entries whose transport carries 600 KB (refused by the schema).
        const fat = await attack({ kind: 'poison', sources: ['127.0.0.10'], connections: 1, messages: 1, entries: 1, transportBytes: 600000, senderId: mode === 'mtls' ? 'peer-3' : undefined, tls: attackerTls(mode) }, victim.port);
        await fat.finished;
        await fat.stop();
        await until(() => seen.errors.some((e) => codeOf(e) === 'ERR_INVALID_MESSAGE'), 15000, 'the fat digest refused');
        await legitimate(mode, victim, 3, 50, legitId);
        const peers = monger.storage.livePeers().length + monger.storage.deadPeers().length;
        report(`poisoning [${mode}]`, { peers, dropped: victim.stats().peers.dropped, attacker: done });
        expect(peers).to.be.at.most(maxPeers);
        expect(victim.stats().peers.known).to.equal(maxPeers);
        // The victim's own digest still fits a frame, so it keeps gossiping.
        expect(Buffer.byteLength(JSON.stringify(monger.digest(monger.storage.livePeers())))).to.be.below(1024 * 1024);
        // Aggregated: one report at once, and at most one more if the 10 s interval ended meanwhile.
        expect(seen.errors.filter((e) => codeOf(e) === 'ERR_PEER_LIMIT').length, 'aggregated reports').to.be.within(1, 2);
      } finally {
        stopGossip([monger]);
      }
    });
  }

  // The token budget sits after the decoder, the same in every mode: plain shows it at the least cost.
  for (const mode of ['plain'] as const) {
    it(`[${mode}] frames built for parse cost are refused before parsing, and a legitimate peer is served meanwhile`, async () => {
      const victim = await listening(mode, SMALL);
      const seen = record(victim);
      const meter = new Meter(victim);
      const attacker = await attack({ kind: 'costly', sources: ['127.0.0.11'], connections: 4, tls: attackerTls(mode) }, victim.port);
      try {
        await until(() => seen.errors.filter((e) => codeOf(e) === 'ERR_INVALID_MESSAGE').length >= 4, 15000, 'costly frames refused');
        await legitimate(mode, victim);
      } finally {
        const done = await attacker.stop();
        report(`costly frames [${mode}]`, { ...meter.stop(), attacker: done });
      }
      const invalid = seen.errors.filter((e) => codeOf(e) === 'ERR_INVALID_MESSAGE');
      for (const error of invalid) expect(error.message).to.match(/(tokens|properties); refused before parsing/);
    });
  }

  for (const mode of ['plain', 'tls'] as const) {
    it(`[${mode}] a legitimate 900 KiB frame at a normal pace passes while one source drips on every other slot`, async () => {
      const victim = await listening(mode, { ...SMALL, frameTimeout: 3000 });
      const seen = record(victim);
      const attacker = await attack({ kind: 'drip', sources: ['127.0.0.12'], connections: 24, dripMs: 50, tls: attackerTls(mode) }, victim.port);
      try {
        await until(() => victim.stats().connections.open >= 16, 15000, 'the attacker filling every slot');
        const socket = await rawClient(mode, victim.port);
        const frame = Buffer.from(JSON.stringify({ deltas: [['big', 'blob', 'b'.repeat(900 * 1024), 1]], sender: { id: 'big' } }) + '\n');
        // 64 KiB every 20 ms: about 300 ms for the frame, a normal pace for a LAN.
        for (let at = 0; at < frame.length; at += 64 * 1024) {
          socket.write(frame.subarray(at, at + 64 * 1024));
          await sleep(20);
        }
        await until(() => seen.deltas.some(([from]) => (from as { id: string }).id === 'big'), 15000, 'the large frame');
        socket.end();
      } finally {
        await attacker.stop();
      }
    });
  }
});
