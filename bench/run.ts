/**
 * npm run bench [-- --quick] [-- --rounds N --measure MS]
 *
 * Every case, each size, round after round (interleaved, so every ratio
 * compares figures from the same round on this noisy shared machine). Each
 * run starts a receiver and a sender process on loopback, warms up, then
 * counts what the receiver delivers in the measuring window.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { CASES, SIZES, type CaseName, type FromWorker, type SizeName, type ToWorker } from './cases';

interface Result {
  rate: number;
  p50: number;
  p99: number;
  peakRss: number;
  errors: number;
}

interface Settings {
  rounds: number;
  warmup: number;
  measure: number;
  /** Only cases whose name contains this (0.1.6 always runs: it is the baseline). */
  only: string | undefined;
}

const WORKER = join(__dirname, 'worker.js');

function parseArgs (argv: string[]): Settings {
  const settings: Settings = { rounds: 5, warmup: 250, measure: 600, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') Object.assign(settings, { rounds: 1, warmup: 120, measure: 300 });
    else if (arg === '--rounds') settings.rounds = Number(argv[++i]);
    else if (arg === '--measure') settings.measure = Number(argv[++i]);
    else if (arg === '--only') settings.only = argv[++i];
    else if (arg === '--help') {
      process.stdout.write('npm run bench [-- --quick | --rounds N --measure MS]\n  default: 5 rounds, 600 ms measured per case and size (under two minutes)\n  --quick: 1 round, 300 ms (about 15 s)\n  --only TEXT: only the cases whose name contains TEXT, besides the 0.1.6 baseline\n  BENCH_NODE_ARGS=\"--cpu-prof --cpu-prof-dir=DIR\" profiles every worker process\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (!(settings.rounds >= 1 && settings.measure >= 50)) throw new Error('--rounds must be >= 1 and --measure >= 50');
  return settings;
}

function start (args: string[]): ChildProcess {
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles every worker.
  const execArgv = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [];
  return fork(WORKER, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
}

function nextMessage<T extends FromWorker['type']> (child: ChildProcess, type: T, ms = 10000): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`worker sent no '${type}' within ${ms} ms`)); }, ms);
    const onMessage = (message: FromWorker): void => {
      if (message.type === type) { cleanup(); resolve(message as Extract<FromWorker, { type: T }>); }
    };
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`worker exited (${code}) before '${type}'`)); };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

function exited (child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill(); resolve(); }, ms);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function runOne (caseIndex: number, sizeIndex: number, settings: Settings): Promise<Result> {
  const receiver = start(['receiver', String(caseIndex), String(sizeIndex)]);
  let sender: ChildProcess | undefined;
  try {
    const { port } = await nextMessage(receiver, 'ready');
    sender = start(['sender', String(caseIndex), String(sizeIndex), String(port)]);
    await nextMessage(sender, 'ready');
    const relay = (message: FromWorker): void => {
      if (message.type === 'received' && sender?.connected) sender.send({ type: 'received', count: message.count } satisfies ToWorker);
    };
    receiver.on('message', relay);
    sender.send({ type: 'start' } satisfies ToWorker);
    await sleep(settings.warmup);
    receiver.send({ type: 'measure' } satisfies ToWorker);
    await sleep(settings.measure);
    const resultPromise = nextMessage(receiver, 'result');
    receiver.send({ type: 'stop' } satisfies ToWorker);
    const result = await resultPromise;
    const sentPromise = nextMessage(sender, 'sent').catch(() => ({ errors: NaN }));
    sender.send({ type: 'stop' } satisfies ToWorker);
    const { errors } = await sentPromise;
    return { rate: (result.count * 1000) / result.ms, p50: result.p50, p99: result.p99, peakRss: result.peakRss, errors };
  } finally {
    // Let the workers exit by themselves (a profile is written on exit), then make sure.
    await Promise.all([receiver, sender].map((child) => child && exited(child, 2000)));
  }
}

function median (values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const fmt = (n: number, digits = 0): string => Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';

async function main (): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const results = new Map<string, Result[]>();
  const key = (c: CaseName, s: SizeName): string => `${c}|${s}`;
  const selected = CASES.map((spec, index) => ({ spec, index }))
    .filter(({ spec }) => settings.only === undefined || spec.impl === 'old' || spec.name.includes(settings.only));
  const total = settings.rounds * SIZES.length * selected.length;
  let done = 0;
  const began = Date.now();
  for (let round = 0; round < settings.rounds; round++) {
    for (let s = 0; s < SIZES.length; s++) {
      // Every other round runs the cases in reverse: per-message cases leave
      // thousands of sockets in TIME_WAIT, which slows the connects of whatever
      // runs next, so no case may always come after the others.
      const order = round % 2 === 0 ? selected : [...selected].reverse();
      for (const { spec, index: c } of order) {
        const name = spec.name;
        process.stderr.write(`\r\x1b[2K[${++done}/${total}] round ${round + 1}/${settings.rounds}: ${name}, ${SIZES[s]} (${Math.round((Date.now() - began) / 1000)} s)`);
        const result = await runOne(c, s, settings);
        const list = results.get(key(name, SIZES[s]!)) ?? [];
        list.push(result);
        results.set(key(name, SIZES[s]!), list);
      }
    }
  }
  process.stderr.write(`\r\x1b[2K${total} runs in ${Math.round((Date.now() - began) / 1000)} s\n`);

  /** Median over rounds of a per-round ratio between two cases of one size. */
  const ratio = (a: CaseName, b: CaseName, size: SizeName): number => {
    const ra = results.get(key(a, size));
    const rb = results.get(key(b, size));
    if (!ra || !rb) return NaN;
    return median(ra.map((r, i) => r.rate / rb[i]!.rate));
  };

  const lines: string[] = [];
  lines.push(`Node ${process.version}, ${settings.rounds} round(s), ${settings.measure} ms measured per run; sender and receiver in separate processes on loopback.`);
  lines.push('');
  lines.push('| case | message | msgs/s median (min-max) | p50 ms | p99 ms | receiver peak RSS | vs 0.1.6 |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const size of SIZES) {
    for (const { spec } of selected) {
      const list = results.get(key(spec.name, size))!;
      const rates = list.map((r) => r.rate);
      lines.push(`| ${spec.name} | ${size} | ${fmt(median(rates))} (${fmt(Math.min(...rates))}-${fmt(Math.max(...rates))}) | ${fmt(median(list.map((r) => r.p50)), 2)} | ${fmt(median(list.map((r) => r.p99)), 2)} | ${fmt(Math.max(...list.map((r) => r.peakRss)) / 1048576, 0)} MiB | ${fmt(ratio(spec.name, 'tcp-0.1.6', size), 2)}x |`);
    }
  }
  lines.push('');
  lines.push('| target (1 KB digest, median of per-round ratios) | ratio | goal | met |');
  lines.push('| --- | --- | --- | --- |');
  const targets: Array<[string, CaseName, CaseName, number]> = [
    ['per-message plain vs 0.1.6', 'plain per message', 'tcp-0.1.6', 1.2],
    ['keepAlive TLS vs 0.1.6', 'keepAlive tls', 'tcp-0.1.6', 10],
    ['keepAlive TLS vs raw TLS socket', 'keepAlive tls', 'raw tls socket', 0.8],
    ['keepAlive plain vs raw net socket', 'keepAlive plain', 'raw net socket', 0.8],
    ['per-message TLS resumed vs full', 'tls per message (resumed)', 'tls per message (full)', 1.3]
  ];
  for (const [label, a, b, goal] of targets) {
    const value = ratio(a, b, '1 KB digest');
    lines.push(`| ${label} | ${fmt(value, 2)}x | >= ${goal}x | ${value >= goal ? 'yes' : 'no'} |`);
  }
  const errors = [...results.values()].flat().reduce((sum, r) => sum + (Number.isFinite(r.errors) ? r.errors : 0), 0);
  lines.push('');
  lines.push(`Sender errors over all runs: ${errors} (connections reset while a run was being stopped count here).`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`\nbench: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
