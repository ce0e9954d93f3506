/**
 * Attacks against a victim transport, measured from both sides:
 *
 *   npm run build && node dist/bench/attacks.js [--before DIR] [--only TEXT] [--duration MS]
 *   (BENCH_PROFILE=DIR: a CPU profile of each victim process in DIR; BENCH_VICTIM_ARGS: node flags for it;
 *   BENCH_STALLS=1: each event-loop stall of the victim over 100 ms, on stderr)
 *
 * Each scenario forks a victim (bench/attack-victim.ts: default options, its
 * own process) and one attacker process per plan (bench/attacker.ts, from
 * its own loopback addresses), while a legitimate peer in this process sends
 * the victim a digest every 100 ms from 127.0.0.1 (from 1.5 s into an
 * open-ended attack, from its start for one that ends). It prints, per scenario,
 * what the legitimate peer experienced (digests delivered, delay) and what
 * the victim spent (peak inbound connections, memory, event-loop delay, CPU).
 *
 * --before DIR runs every scenario a second time against the build in DIR
 * (a checkout of an older commit after `npm ci && npm run build`), its
 * legitimate peer included, and prints both rows side by side.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { loadPem } from '../scripts/generate-certs';
import type { AttackPlan } from './attacker';
import type { VictimReport, VictimSetup } from './attack-victim';

type Mode = VictimSetup['mode'];

interface Scenario {
  name: string;
  mode: Mode;
  plans: Array<Omit<AttackPlan, 'port' | 'tls'>>;
  gossipmonger?: boolean;
  /** The attack ends by itself (one-byte, poison): measure until it has, then one more second. */
  bounded?: boolean;
  /**
   * Outbound: the victim (a gossipmonger peer holding `values` values of
   * `valueBytes`) sends the honest peer a digest every 100 ms, and what is
   * measured is how many of its own sends arrive.
   */
  outbound?: { values: number; valueBytes: number };
}

/** 300 loopback source addresses, one per attacker connection (127.0.1.0 and up). */
const MANY_SOURCES = Array.from({ length: 300 }, (_, i) => `127.0.${1 + (i >> 8)}.${i & 255}`);

const SCENARIOS: Scenario[] = [
  ...(['plain', 'tls', 'mtls'] as const).map((mode): Scenario => ({
    name: 'lock-out: 300 connections mid-frame, a byte every 2 s, 1 source',
    mode,
    plans: [{ kind: 'drip', sources: ['127.0.0.2'], connections: 300, dripMs: 2000 }]
  })),
  { name: 'lock-out: 4 sources x 80 connections mid-frame', mode: 'tls', plans: [{ kind: 'drip', sources: ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'], connections: 80, dripMs: 2000 }] },
  { name: 'reconnect storm: 300 idle holders reconnecting, 1 source', mode: 'plain', plans: [{ kind: 'drip', sources: ['127.0.0.6'], connections: 300, dripMs: 0 }] },
  { name: 'handshake flood: 64 full handshakes at once, 1 source', mode: 'tls', plans: [{ kind: 'handshake', sources: ['127.0.0.7'], connections: 64 }] },
  { name: 'one-byte TLS records: 3 x 200 KB frames', mode: 'tls', bounded: true, plans: [{ kind: 'one-byte', sources: ['127.0.0.8'], connections: 3, frameBytes: 200000 }] },
  { name: 'poisoning: 30 digests x 2,000 fake peers (gossipmonger victim)', mode: 'plain', gossipmonger: true, bounded: true, plans: [{ kind: 'poison', sources: ['127.0.0.9'], connections: 1, messages: 30, entries: 2000 }] },
  { name: 'poisoning: 2 entries with a 600 KB transport (gossipmonger victim)', mode: 'plain', gossipmonger: true, bounded: true, plans: [{ kind: 'poison', sources: ['127.0.0.10'], connections: 2, messages: 1, entries: 1, transportBytes: 600000 }] },
  { name: 'costly frames: 4 connections of ~1 MiB, 90,000-key senders', mode: 'plain', plans: [{ kind: 'costly', sources: ['127.0.0.11'], connections: 4 }] },
  ...(['plain', 'tls', 'mtls'] as const).map((mode): Scenario => ({
    name: 'many sources: 300 sources x 1 connection mid-frame, a byte every 1 s',
    mode,
    plans: [{ kind: 'drip', sources: MANY_SOURCES, connections: 1, dripMs: 1000 }]
  })),
  ...([['plain', 3], ['plain', 300], ['tls', 3], ['tls', 300], ['mtls', 300]] as const).map(([mode, tarpits]): Scenario => ({
    name: `reflection: ${tarpits} tarpits, 600 digests/s (victim's own sends measured)`,
    mode,
    gossipmonger: true,
    outbound: { values: 1, valueBytes: 100 },
    plans: [{ kind: 'reflect', sources: ['127.0.0.2'], connections: 1, tarpits, rate: 600 }]
  })),
  ...(['plain', 'tls'] as const).map((mode): Scenario => ({
    name: 'queued memory: reflection into 256 tarpits, 5 x 190 KB values (victim\'s own sends measured)',
    mode,
    gossipmonger: true,
    outbound: { values: 5, valueBytes: 190000 },
    plans: [{ kind: 'reflect', sources: ['127.0.0.2'], connections: 1, tarpits: 256, rate: 200 }]
  }))
];

interface Settings {
  before: string | undefined;
  only: string | undefined;
  duration: number;
}

function parseArgs (argv: string[]): Settings {
  const settings: Settings = { before: undefined, only: undefined, duration: 5000 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--before') settings.before = resolve(argv[++i]!);
    else if (arg === '--only') settings.only = argv[++i];
    else if (arg === '--duration') settings.duration = Number(argv[++i]);
    else throw new Error(`unknown argument ${arg}; usage: node dist/bench/attacks.js [--before DIR] [--only TEXT] [--duration MS]`);
  }
  return settings;
}

interface LegitTransport extends NodeJS.EventEmitter {
  port: number;
  listen (callback: () => void): void;
  close (callback: () => void): void;
  digest (remote: unknown, local: unknown, digest: unknown): void;
}

function tlsFor (mode: Mode, peer: string): Record<string, unknown> | undefined {
  if (mode === 'plain') return undefined;
  return { ...loadPem(peer), ca: loadPem('ca').cert, ...(mode === 'mtls' ? { requestCert: true } : {}) };
}

function messageOf<T> (child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (message: { type?: string }): void => {
      if (message.type !== type) return;
      child.removeListener('message', on);
      resolve(message as T);
    };
    child.on('message', on);
  });
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Row {
  sent: number;
  victim: VictimReport;
}

async function run (scenario: Scenario, module: string, duration: number): Promise<Row> {
  const Transport = require(module) as new (options: unknown) => LegitTransport;
  const tls = tlsFor(scenario.mode, 'peer-2');
  const legit = new Transport({ host: '127.0.0.1', port: 0, ...(tls ? { tls } : {}) });
  legit.on('error', () => {});
  await new Promise<void>((resolve) => legit.listen(resolve));
  // Outbound scenarios: the legitimate peer is the honest receiver of the victim's own sends.
  const received: number[] = [];
  legit.on('digest', (sender: { id: string }, digest: Array<{ maxVersionSeen: number }>) => {
    if (sender.id === 'victim' && digest[0] !== undefined && digest[0].maxVersionSeen > 1) received.push(Date.now() - digest[0].maxVersionSeen);
  });

  const setup: VictimSetup = {
    module,
    mode: scenario.mode,
    gossipmonger: scenario.gossipmonger === true,
    ...(scenario.outbound ? { values: scenario.outbound.values, valueBytes: scenario.outbound.valueBytes, honestPort: legit.port } : {})
  };
  // BENCH_PROFILE=DIR: a CPU profile of each victim in DIR (node --cpu-prof).
  const profile = process.env.BENCH_PROFILE;
  const victim = fork(join(__dirname, 'attack-victim.js'), [JSON.stringify(setup)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), ...(process.env.BENCH_VICTIM_ARGS?.split(' ').filter(Boolean) ?? [])] });
  const { port } = await messageOf<{ port: number }>(victim, 'ready');
  const remote = { id: 'victim', transport: { host: '127.0.0.1', port } };
  const local = { id: 'legit', transport: { host: '127.0.0.1', port: legit.port } };

  // The legitimate peer is a member before the attack starts: the victim has heard from it once.
  // (maxVersionSeen 1: the victim does not count it among the timed ones.)
  legit.digest(remote, local, [{ id: 'legit', maxVersionSeen: 1 }]);
  await sleep(300);

  const attackerTls = scenario.mode === 'plain' ? undefined : { ca: loadPem('ca').cert, ...(scenario.mode === 'mtls' ? loadPem('peer-3') : {}) };
  const attackers = scenario.plans.map((plan) => fork(join(__dirname, 'attacker.js'), [JSON.stringify({ ...plan, port, tls: attackerTls, duration: 120000 })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  await Promise.all(attackers.map((a) => messageOf(a, 'ready')));
  const finished = Promise.all(attackers.map((a) => messageOf(a, 'finished')));
  // An open-ended attack gets a head start, as a real one would have: the figures are for a victim already under it.
  if (!scenario.bounded) await sleep(1500);

  let sent = 0;
  const ticker = scenario.outbound ? undefined : setInterval(() => {
    legit.digest(remote, local, [{ id: 'legit', maxVersionSeen: Date.now() }]);
    sent++;
  }, 100);
  if (scenario.outbound) victim.send('honest');
  if (scenario.bounded) {
    await Promise.race([finished, sleep(60000)]);
    await sleep(1000);
  } else {
    await sleep(duration);
  }
  clearInterval(ticker);
  if (scenario.outbound) victim.send('quiet');
  // Digests still in flight get 2 s to arrive.
  await sleep(2000);
  for (const attacker of attackers) if (attacker.connected) attacker.send('stop');
  await Promise.all(attackers.map((a) => a.exitCode === null ? once(a, 'exit') : undefined));
  const report = messageOf<VictimReport>(victim, 'report');
  victim.send('stop');
  const result = await report;
  await new Promise<void>((resolve) => legit.close(resolve));
  if (scenario.outbound) {
    // The victim's own sends: what the honest peer received, with their delays.
    result.delays = received.sort((a, b) => a - b);
    sent = result.sentToHonest;
  }
  return { sent, victim: result };
}

function mib (n: number): string {
  return n.toFixed(0);
}

function cells (row: Row): string[] {
  const v = row.victim;
  const delays = v.delays;
  const p50 = delays.length > 0 ? delays[Math.floor(delays.length / 2)]!.toFixed(0) : 'n/a';
  const max = delays.length > 0 ? delays[delays.length - 1]!.toFixed(0) : 'n/a';
  const notes: string[] = [];
  if (v.peers !== undefined) notes.push(`gossipmonger peers ${v.peers}, own digest ${(v.digestBytes! / 1024).toFixed(0)} KiB`);
  const honest = Object.entries(v.honestErrors ?? {}).map(([code, n]) => `${code} ${n}`);
  if (honest.length > 0) notes.push(`sends to the honest peer failed: ${honest.join(', ')}`);
  if (v.peakOutbound > 0) notes.push(`peak outbound sockets ${v.peakOutbound}${v.peakOutboundQueuedMiB === undefined ? '' : `, peak queued ${v.peakOutboundQueuedMiB.toFixed(1)} MiB`}`);
  const errors = Object.entries(v.errors).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([code, n]) => `${code} ${n}`);
  if (errors.length > 0) notes.push(errors.join(', '));
  return [`${delays.length}/${row.sent}`, `${p50} / ${max}`, String(v.peakOpen), mib(v.peakRssMiB), mib(v.peakLiveMiB), `${v.eldMaxMs.toFixed(0)} (${v.busyStallMs.toFixed(0)})`, (v.cpuMs / 1000).toFixed(1), notes.join('; ')];
}

async function main (): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const builds: Array<[string, string]> = [['after', join(__dirname, '..', 'src', 'index.js')]];
  if (settings.before) builds.unshift(['before', join(settings.before, 'dist', 'src', 'index.js')]);
  const lines = [
    '| attack | mode | build | legit delivered | delay p50 / max ms | peak conns | peak RSS MiB | peak live MiB | event-loop max ms (of it CPU) | CPU s | notes |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
  ];
  for (const scenario of SCENARIOS) {
    if (settings.only !== undefined && !scenario.name.includes(settings.only)) continue;
    for (const [build, module] of builds) {
      process.stderr.write(`${scenario.name} [${scenario.mode}] ${build}...\n`);
      const row = await run(scenario, module, settings.duration);
      lines.push(`| ${scenario.name} | ${scenario.mode} | ${build} | ${cells(row).join(' | ')} |`);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
