/**
 * `npm run soak [-- --duration SECONDS]` (or SOAK_DURATION=SECONDS; default
 * 600): ten gossipmonger peers in this process, over mutual TLS with the
 * transport's default options on loopback, gossiping under churn for the
 * given time:
 *
 * - a peer is restarted (transport closed, a new one on the same port, a new
 *   gossipmonger with the same id) every 3 s;
 * - every connection through one peer's fault proxy is reset every 2 s;
 * - a separate process (scripts/soak-attacker.ts, from 127.0.0.2) keeps
 *   opening hostile connections: garbage, plaintext, a stalled handshake, no
 *   client certificate, a certificate from another CA, silence.
 *
 * Once a second it forces a garbage collection (when run with --expose-gc)
 * and samples RSS, heap used, open file descriptors and active handles. It
 * fits a least-squares line to each over the second half of the run (the
 * first half is warm-up: JIT, caches filling up to their bounds) and fails
 * when a slope exceeds its bound (see BOUNDS), or when gossip stopped
 * flowing. Prints a table; with --json, a last line of JSON for a caller.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import TcpTransport = require('../src/index');
import { makeCa, makePeer, type Pem } from './generate-certs';
import { Gossipmonger, type Monger } from './typed-packages';
import { FaultProxy } from '../test/support/fault-proxy';

const HOST = '127.0.0.1';
const PEERS = 10;
const GOSSIP_INTERVAL = 100;
const UPDATE_EVERY = 200;
const RESTART_EVERY = 3000;
const RESET_EVERY = 2000;

export type Metric = 'rss' | 'heapUsed' | 'fds' | 'handles';
const METRICS: Metric[] = ['rss', 'heapUsed', 'fds', 'handles'];

/**
 * A slope passes when it is below max(floor, 4 standard errors of the fitted
 * slope); the 4-sigma term keeps a noisy run (a loaded machine) from failing
 * on scatter alone, and shrinks as samples accumulate.
 *
 * Floors for a run of 5 minutes or more are leaks we would call bugs: in a
 * day, 4 KB/s of heap is 350 MB and 32 KB/s of RSS is 2.7 GB; 0.02
 * descriptors or handles a second is one leaked per 50 s of churn (about a
 * thousand connections), 1,700 a day, past a default `ulimit -n` of 1,024.
 *
 * A shorter run (the 30 s one in `npm test`) sees 15 samples of a process
 * still warming up (RSS grows for minutes as the allocator and V8 settle), so
 * it only catches gross leaks: the churn opens 15-30 connections a second,
 * so a leak of one descriptor in 30 connections is 0.5/s, and of 10 KB per
 * connection 150 KB/s or more. Its floors: heap 64 KB/s, RSS 1 MB/s,
 * descriptors and handles 0.5/s. RSS gets the loosest floor because it is
 * the noisiest in a warming process (measured alone at 210 KB/s, and once
 * past 512 KB/s when the machine ran several test suites at once); the heap,
 * sampled after a full GC, is the sharper detector of a leak this short.
 */
export function floorsFor (durationMs: number): Record<Metric, number> {
  return durationMs >= 300000
    ? { rss: 32 * 1024, heapUsed: 4 * 1024, fds: 0.02, handles: 0.02 }
    : { rss: 1024 * 1024, heapUsed: 64 * 1024, fds: 0.5, handles: 0.5 };
}

export interface Sample { t: number; rss: number; heapUsed: number; fds: number; handles: number; delivered: number }

export interface SoakResult {
  ok: boolean;
  duration: number;
  samples: number;
  slopes: Array<{ metric: Metric; slope: number; stderr: number; bound: number; ok: boolean; first: number; last: number; min: number; max: number }>;
  counts: { restarts: number; resets: number; hostile: number; delivered: number; deliveredSecondHalf: number; errors: Record<string, number> };
  failures: string[];
}

/** Least squares y = a + b t: the slope b and its standard error. */
export function fitSlope (points: Array<[number, number]>): { slope: number; stderr: number } {
  const n = points.length;
  if (n < 3) return { slope: 0, stderr: Infinity };
  const mt = points.reduce((s, [t]) => s + t, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let stt = 0;
  let sty = 0;
  for (const [t, y] of points) {
    stt += (t - mt) ** 2;
    sty += (t - mt) * (y - my);
  }
  const slope = sty / stt;
  const intercept = my - slope * mt;
  const residual = points.reduce((s, [t, y]) => s + (y - intercept - slope * t) ** 2, 0);
  return { slope, stderr: Math.sqrt(residual / (n - 2) / stt) };
}

/** Judges the samples: each metric's slope over the second half against its bound. */
export function judge (samples: Sample[], floors: Record<Metric, number>): { slopes: SoakResult['slopes']; failures: string[] } {
  const half = samples.slice(Math.floor(samples.length / 2));
  const failures: string[] = [];
  const slopes = METRICS.map((metric) => {
    const { slope, stderr } = fitSlope(half.map((s) => [s.t / 1000, s[metric]]));
    const bound = Math.max(floors[metric], 4 * stderr);
    const values = half.map((s) => s[metric]);
    const ok = slope <= bound;
    if (!ok) failures.push(`${metric} grows by ${slope.toFixed(3)}/s over the second half (bound ${bound.toFixed(3)}/s)`);
    return { metric, slope, stderr, bound, ok, first: values[0] ?? 0, last: values[values.length - 1] ?? 0, min: Math.min(...values), max: Math.max(...values) };
  });
  return { slopes, failures };
}

interface SoakPeer {
  id: string;
  index: number;
  port: number;
  proxy: FaultProxy;
  transport: InstanceType<typeof TcpTransport>;
  monger: Monger;
  updates: NodeJS.Timeout;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function soak (durationMs: number, progress: (line: string) => void): Promise<SoakResult> {
  const ca = await makeCa('soak CA');
  const rogueCa = await makeCa('soak rogue CA');
  const pems: Pem[] = [];
  for (let i = 0; i < PEERS; i++) pems.push(await makePeer(ca, { cn: `soak-${i + 1}`, ips: [HOST] }));
  const rogue = await makePeer(rogueCa, { cn: 'soak-1', ips: ['127.0.0.2'] });

  const errors: Record<string, number> = {};
  let delivered = 0;
  const counts = { restarts: 0, resets: 0, hostile: 0 };
  const peers: SoakPeer[] = [];

  const startPeer = async (index: number, port: number, proxy: FaultProxy): Promise<SoakPeer> => {
    const id = `soak-${index + 1}`;
    const transport = new TcpTransport({ host: HOST, port, tls: { ...pems[index]!, ca: ca.cert, requestCert: true, authorize: 'sender-id' } });
    transport.on('error', (error: Error & { code?: string }) => { errors[error.code ?? 'UNKNOWN'] = (errors[error.code ?? 'UNKNOWN'] ?? 0) + 1; });
    transport.on('deltas', () => { delivered++; });
    transport.on('digest', () => { delivered++; });
    await new Promise<void>((resolve) => transport.listen(resolve));
    const listening = transport.address()!.port;
    proxy.retarget({ host: HOST, port: listening });
    // Peers are told the proxy's port; a restarted peer keeps it.
    transport.port = proxy.port;
    const seed = peers[0] ?? undefined;
    const monger = new Gossipmonger({ id, transport: { host: HOST, port: proxy.port }, maxVersionSeen: Date.now() * 1000 }, {
      transport,
      GOSSIP_INTERVAL,
      seeds: index === 0 || seed === undefined ? [] : [{ id: seed.id, transport: { host: HOST, port: seed.proxy.port } }]
    });
    monger.on('error', () => {});
    let seq = 0;
    const updates = setInterval(() => monger.update(`key-${id}`, { seq: seq++ }), UPDATE_EVERY);
    monger.update(`key-${id}`, { seq: seq++ });
    monger.gossip();
    return { id, index, port: listening, proxy, transport, monger, updates };
  };

  const stopPeer = async (peer: SoakPeer): Promise<void> => {
    clearInterval(peer.updates);
    if (peer.monger.timeout) clearTimeout(peer.monger.timeout);
    peer.monger.timeout = null;
    await new Promise<void>((resolve) => peer.transport.close(resolve));
  };

  for (let i = 0; i < PEERS; i++) {
    const proxy = new FaultProxy({ host: HOST, port: 1 });
    await proxy.listen(HOST);
    peers.push(await startPeer(i, 0, proxy));
  }

  const attacker: ChildProcess = fork(join(__dirname, 'soak-attacker.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  attacker.on('message', (message: { hostile?: number }) => { if (message.hostile !== undefined) counts.hostile = message.hostile; });
  attacker.send({ ports: peers.map((p) => p.port), rogue, ca: ca.cert });

  const samples: Sample[] = [];
  const started = Date.now();
  const gc = (globalThis as { gc?: () => void }).gc;
  let nextRestart = started + RESTART_EVERY;
  let nextReset = started + RESET_EVERY;
  let victim = 0;
  while (Date.now() - started < durationMs) {
    const now = Date.now();
    if (now >= nextRestart) {
      nextRestart += RESTART_EVERY;
      // Never the seed: restarted peers find the cluster through it.
      victim = 1 + (victim % (PEERS - 1));
      const old = peers[victim]!;
      await stopPeer(old);
      peers[victim] = await startPeer(victim, old.port, old.proxy);
      counts.restarts++;
    }
    if (now >= nextReset) {
      nextReset += RESET_EVERY;
      peers[Math.floor(Math.random() * PEERS)]!.proxy.resetAll();
      counts.resets++;
    }
    gc?.();
    const memory = process.memoryUsage();
    const sample: Sample = {
      t: Date.now() - started,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      fds: readdirSync('/proc/self/fd').length,
      handles: process.getActiveResourcesInfo().length,
      delivered
    };
    samples.push(sample);
    if (samples.length % 10 === 0) progress(row(sample));
    await sleep(Math.max(0, 1000 - (Date.now() - now)));
  }

  attacker.kill('SIGKILL');
  for (const peer of peers) await stopPeer(peer);
  await Promise.all(peers.map((peer) => peer.proxy.close()));

  const { slopes, failures } = judge(samples, floorsFor(durationMs));
  const mid = samples[Math.floor(samples.length / 2)]?.delivered ?? 0;
  const deliveredSecondHalf = delivered - mid;
  // Flat lines prove nothing if the cluster had stopped.
  if (deliveredSecondHalf === 0) failures.push('no frame was delivered in the second half: gossip stopped');
  if (counts.restarts === 0) failures.push('no peer was restarted (run longer than 3 s)');
  return {
    ok: failures.length === 0,
    duration: durationMs,
    samples: samples.length,
    slopes,
    counts: { ...counts, delivered, deliveredSecondHalf, errors },
    failures
  };
}

function mb (bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function row (s: Sample): string {
  return `| ${(s.t / 1000).toFixed(0)} s | ${mb(s.rss)} | ${mb(s.heapUsed)} | ${s.fds} | ${s.handles} | ${s.delivered} |`;
}

export function report (result: SoakResult): string {
  const unit = (metric: Metric, value: number): string => metric === 'rss' || metric === 'heapUsed' ? `${(value / 1024).toFixed(2)} KB/s` : `${value.toFixed(4)}/s`;
  const level = (metric: Metric, value: number): string => metric === 'rss' || metric === 'heapUsed' ? mb(value) : String(value);
  const lines = [
    `soak: ${PEERS} peers, mutual TLS, ${(result.duration / 1000).toFixed(0)} s, ${result.samples} samples; ${result.counts.restarts} restarts, ${result.counts.resets} proxy resets, ${result.counts.hostile} hostile connections; ${result.counts.delivered} frames delivered (${result.counts.deliveredSecondHalf} in the second half)`,
    '',
    '| metric (second half) | first | last | min | max | slope | bound | ok |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...result.slopes.map((s) => `| ${s.metric} | ${level(s.metric, s.first)} | ${level(s.metric, s.last)} | ${level(s.metric, s.min)} | ${level(s.metric, s.max)} | ${unit(s.metric, s.slope)} | ${unit(s.metric, s.bound)} | ${s.ok ? 'yes' : 'NO'} |`),
    '',
    `errors by code: ${Object.entries(result.counts.errors).sort(([, a], [, b]) => b - a).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`
  ];
  for (const failure of result.failures) lines.push(`FAIL ${failure}`);
  return lines.join('\n');
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--duration');
  const seconds = Number(at >= 0 ? argv[at + 1] : process.env.SOAK_DURATION ?? 600);
  if (!Number.isFinite(seconds) || seconds < 5) {
    process.stderr.write('soak: --duration must be a number of seconds, at least 5\n');
    process.exit(2);
  }
  const json = argv.includes('--json');
  if (!(globalThis as { gc?: () => void }).gc) process.stderr.write('soak: run with --expose-gc for heap figures after a full collection\n');
  const log = (line: string): void => { process.stderr.write(line + '\n'); };
  log('| t | rss | heap used | fds | handles | frames delivered |');
  log('| --- | --- | --- | --- | --- | --- |');
  soak(seconds * 1000, log).then((result) => {
    process.stdout.write(report(result) + '\n');
    if (json) process.stdout.write(JSON.stringify(result) + '\n');
    process.exitCode = result.ok ? 0 : 1;
  }).catch((error: unknown) => {
    process.stderr.write(`soak: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
