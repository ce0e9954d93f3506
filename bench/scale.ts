/**
 * One gossipmonger@0.1.10 cluster in this process, measured in detail:
 *
 *   node dist/bench/scale.js --peers 100 --mode mtls [--authorize sender-id]
 *     [--interval 50] [--limit 60000] [--json] [--lift-limits] [--options '{"outbound":{"maxHandshakes":2}}']
 *
 * Peers on 127.0.0.1 with default options (`--lift-limits` lifts the
 * per-source inbound limits: every peer connects from 127.0.0.1 here, where a
 * real cluster has an address per peer; they apply under contention only),
 * each with a key of its own and peer 0 as its seed.
 * Under `--authorize sender-id` every peer gets a certificate of its own
 * (CN = its id), generated once into certs/scale/.
 *
 * Reports the time until 50%, 90%, 99% and all of the keys are everywhere,
 * the CPU it took, and up to full convergence: TLS handshakes per peer (full
 * and resumed, outbound: every connection is dialled by someone), connections
 * per pair of peers, connections closed cleanly (idle) and every error by code.
 */
import { subscribe } from 'node:diagnostics_channel';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance as perfHooks } from 'node:perf_hooks';
const eventLoopUtilization = perfHooks.eventLoopUtilization.bind(perfHooks);
import TcpTransport = require('../src/index');
import { LOOPBACK, makeCa, makePeer, type Pem } from '../scripts/generate-certs';
import { Gossipmonger, stopGossip } from '../scripts/typed-packages';

const HOST = '127.0.0.1';
const CERTS = join(__dirname, '..', '..', 'certs');
const SHARED = ['peer-1', 'peer-2', 'peer-3', 'peer-4', 'peer-5'];

interface Args { peers: number; mode: 'plain' | 'tls' | 'mtls'; authorize: 'any' | 'sender-id'; interval: number; limit: number; json: boolean; liftLimits: boolean; options: Record<string, unknown> }

function parse (argv: string[]): Args {
  const args: Args = { peers: 50, mode: 'mtls', authorize: 'any', interval: 50, limit: 60000, json: false, liftLimits: false, options: {} };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--peers') { args.peers = Number(value); i++; } else if (flag === '--mode') { args.mode = value as Args['mode']; i++; } else if (flag === '--authorize') { args.authorize = value as Args['authorize']; i++; } else if (flag === '--interval') { args.interval = Number(value); i++; } else if (flag === '--limit') { args.limit = Number(value); i++; } else if (flag === '--json') args.json = true;
    else if (flag === '--lift-limits') args.liftLimits = true;
    else if (flag === '--options') { args.options = JSON.parse(value!) as Record<string, unknown>; i++; }
    else throw new Error(`unknown flag ${flag}`);
  }
  if (args.authorize === 'sender-id' && args.mode !== 'mtls') throw new Error('--authorize sender-id needs --mode mtls');
  return args;
}

/** One certificate per peer id (CN = id), for 'sender-id'; generated once. */
async function ownCertificates (n: number): Promise<{ ca: string; pems: Pem[] }> {
  const dir = join(CERTS, 'scale');
  mkdirSync(dir, { recursive: true });
  const read = (name: string): Pem => ({ key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') });
  const write = (name: string, pem: Pem): void => {
    writeFileSync(join(dir, `${name}.crt`), pem.cert);
    writeFileSync(join(dir, `${name}.key`), pem.key, { mode: 0o600 });
  };
  if (!existsSync(join(dir, 'ca.crt'))) write('ca', await makeCa('scale bench CA'));
  const ca = read('ca');
  const pems: Pem[] = [];
  for (let i = 0; i < n; i++) {
    if (!existsSync(join(dir, `p${i}.crt`))) write(`p${i}`, await makePeer(ca, { cn: `p${i}`, ...LOOPBACK }));
    pems.push(read(`p${i}`));
  }
  return { ca: ca.cert, pems };
}

async function main (): Promise<void> {
  const args = parse(process.argv.slice(2));
  const n = args.peers;
  let ca = '';
  let pems: Pem[] = [];
  if (args.mode !== 'plain') {
    if (args.authorize === 'sender-id') ({ ca, pems } = await ownCertificates(n));
    else {
      ca = readFileSync(join(CERTS, 'ca.crt'), 'utf8');
      pems = SHARED.map((name) => ({ key: readFileSync(join(CERTS, `${name}.key`), 'utf8'), cert: readFileSync(join(CERTS, `${name}.crt`), 'utf8') }));
    }
  }
  const errors: Record<string, number> = {};
  let converged = false;
  let cleanCloses = 0;
  let idleTimeouts = 0;
  subscribe('gossipmonger-tls-transport:outbound:closed', (message) => {
    if (!converged && (message as { error?: unknown }).error === undefined) cleanCloses++;
  });
  subscribe('gossipmonger-tls-transport:inbound:closed', (message) => {
    const error = (message as { error?: { code?: string } }).error;
    if (!converged && error?.code === 'ERR_IDLE_TIMEOUT') idleTimeouts++;
  });
  const transports: TcpTransport[] = [];
  for (let i = 0; i < n; i++) {
    const pem = pems[i % Math.max(1, pems.length)];
    const tls = args.mode === 'plain'
      ? undefined
      : { ...pem!, ca, ...(args.mode === 'mtls' ? { requestCert: true } : {}), ...(args.authorize === 'sender-id' ? { authorize: 'sender-id' as const } : {}) };
    const lifted = args.liftLimits ? { maxConnectionsPerSource: Infinity, connectionsPerSecondPerSource: Infinity } : {};
    const t = new TcpTransport({ host: HOST, port: 0, ...lifted, ...args.options, ...(tls ? { tls } : {}) });
    t.on('error', (error: NodeJS.ErrnoException) => {
      if (converged) return;
      const code = error.code ?? 'UNKNOWN';
      // The first of each code, on stderr, to say where it came from.
      if (errors[code] === undefined) process.stderr.write(`  first ${code} at p${i}: ${error.message} (${String((error as { remoteAddress?: string }).remoteAddress)}:${String((error as { remotePort?: number }).remotePort)})\n`);
      errors[code] = (errors[code] ?? 0) + 1;
    });
    await new Promise<void>((resolve) => t.listen(resolve));
    transports.push(t);
  }
  const seed = { id: 'p0', transport: { host: HOST, port: transports[0]!.port } };
  const peers = transports.map((t, i) => {
    const peer = new Gossipmonger({ id: `p${i}`, transport: { host: HOST, port: t.port } }, { transport: t, GOSSIP_INTERVAL: args.interval, seeds: i === 0 ? [] : [seed] });
    peer.on('error', () => {});
    peer.update(`k${i}`, `v${i}`);
    return peer;
  });
  const want = n * (n - 1);
  const replicated = (): number => {
    let seen = 0;
    for (let i = 0; i < n; i++) {
      const peer = peers[i]!;
      for (let j = 0; j < n; j++) if (i !== j && peer.storage.get(`p${j}`)?.data[`k${j}`]?.[0] === `v${j}`) seen++;
    }
    return seen;
  };
  const marks: Record<string, number | undefined> = { t50: undefined, t90: undefined, t99: undefined, t100: undefined };
  // The process CPU at each mark: on a shared machine the wall clock also
  // counts other processes' turns; all peers run on this one thread.
  const cpuMarks: Record<string, number | undefined> = {};
  const cpu0 = process.cpuUsage();
  const elu0 = eventLoopUtilization();
  const t0 = performance.now();
  for (const peer of peers) peer.gossip();
  let done = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      done = replicated();
      const now = performance.now() - t0;
      for (const [name, share] of [['t50', 0.5], ['t90', 0.9], ['t99', 0.99], ['t100', 1]] as const) {
        if (marks[name] === undefined && done >= share * want) {
          marks[name] = now;
          const used = process.cpuUsage(cpu0);
          cpuMarks[name] = (used.user + used.system) / 1000;
        }
      }
      if (done === want || now > args.limit) { clearInterval(tick); resolve(); }
    }, 20);
  });
  converged = true;
  const cpu = process.cpuUsage(cpu0);
  const elu = eventLoopUtilization(elu0);
  const stats = transports.map((t) => t.stats());
  stopGossip(peers);
  const sum = (pick: (s: ReturnType<TcpTransport['stats']>) => number): number => stats.reduce((total, s) => total + pick(s), 0);
  const outbound = sum((s) => s.connections.outbound);
  const resumed = sum((s) => s.connections.resumed);
  const seconds = (ms: number | undefined): number | null => ms === undefined ? null : Math.round(ms) / 1000;
  const result = {
    peers: n,
    mode: args.mode,
    authorize: args.authorize,
    interval: args.interval,
    replicated: done / want,
    t50: seconds(marks.t50),
    t90: seconds(marks.t90),
    t99: seconds(marks.t99),
    t100: seconds(marks.t100),
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1000) / 1000,
    cpuAt: { t99: seconds(cpuMarks.t99), t100: seconds(cpuMarks.t100) },
    /** Share of one core this process got until the end (1 on an idle machine when CPU-bound). */
    coreShare: Math.round((cpu.user + cpu.system) / 1000 / (performance.now() - t0) * 100) / 100,
    /** Share of the time the event loop was busy (not waiting for I/O or timers): near 1 when CPU-bound. */
    loopBusy: Math.round(elu.utilization * 100) / 100,
    handshakesPerPeer: { full: (outbound - resumed) / n, resumed: resumed / n },
    connectionsPerPair: outbound / (n * (n - 1) / 2),
    accepted: sum((s) => s.connections.accepted),
    cleanClosesBeforeConvergence: cleanCloses,
    idleTimeoutsBeforeConvergence: idleTimeouts,
    errors
  };
  if (args.json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    const f = (v: number | undefined | null): string => v === undefined || v === null ? 'never' : `${v.toFixed(2)} s`;
    process.stdout.write(`${n} peers ${args.mode} ${args.authorize}${args.liftLimits ? ' (per-source limits lifted)' : ''}, every ${args.interval} ms: ` +
      `t50 ${f(result.t50)} t90 ${f(result.t90)} t99 ${f(result.t99)} full ${f(result.t100)} (${(100 * result.replicated).toFixed(1)}%), CPU ${result.cpuSeconds.toFixed(1)} s (at t99 ${f(result.cpuAt.t99)}, full ${f(result.cpuAt.t100)}; ${result.coreShare} of a core, loop busy ${result.loopBusy}); ` +
      `handshakes/peer full ${result.handshakesPerPeer.full.toFixed(1)} resumed ${result.handshakesPerPeer.resumed.toFixed(1)}; ` +
      `connections/pair ${result.connectionsPerPair.toFixed(2)}; clean closes ${cleanCloses}, idle timeouts ${idleTimeouts}; errors ${JSON.stringify(errors)}\n`);
  }
  await Promise.all(transports.map((t) => t.close()));
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench scale: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
