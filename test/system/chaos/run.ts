/**
 * `npm run chaos`: a gossipmonger@0.1.10 cluster of five hosts, each in its
 * own network namespace, over mutual TLS with the transport's default
 * options, under a scripted sequence of faults. Run once with keepAlive and
 * once with one connection per message.
 *
 * After each fault it measures the time until every live peer has every
 * other live peer's latest value, and asserts a bound derived from the
 * gossip interval (see `convergenceBound`). Then it quiesces the cluster and
 * checks the ledger: every frame a sender's transport accepted was delivered
 * or reported in an error's frame counts.
 *
 * Needs root and iproute2; elsewhere it says why and exits 0 without running.
 * Options: --only TEXT (faults whose name contains TEXT), --mode keepAlive|per-message;
 * CHAOS_LOG=FILE appends every line the peers print, timed.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { makeCa, makePeer, type Pem } from '../../../scripts/generate-certs';
import { DEFAULTS } from '../../../src/options';
import { Namespaces, namespacesUnavailable, type Topology } from '../../support/netns';
import type { PeerConfig } from '../../support/netns-peer';
import type { Faults } from '../../support/fault-proxy';
import { Ledger, type LedgerRow } from './ledger';

const HOSTS = 5;
/** gossipmonger's GOSSIP_INTERVAL for the cluster (its default is 1000 ms; shorter keeps the run short). */
const INTERVAL = 200;
/** Each peer changes its value this often: faults always strike mid-traffic. */
const UPDATE_EVERY = 100;
const PROXY_PORT = 7400;
const LISTEN_PORT = 7401;
const CONNECT_TIMEOUT = DEFAULTS.connectTimeout;
const DAY = 24 * 3600 * 1000;

/**
 * The convergence bound, in ms, for `n` live peers.
 *
 * gossipmonger 0.1.10 is pull-only: every INTERVAL each peer sends its digest
 * to one peer it thinks live, chosen uniformly, and the receiver answers with
 * what the sender lacks (at most MAX_DELTAS_PER_GOSSIP = 5 deltas; each peer
 * here has one key, so four peers' values always fit). It also sends to a
 * peer it thinks dead with probability dead/(live+1). Either way, in each
 * round a given peer pulls from a given other peer with probability at least
 * p = 1/n (1/(n-1) when it thinks all live, 1/(live+1) >= 1/n for one it
 * thinks dead). Ignoring the help of indirect spread (which only speeds
 * things up), a value is still missing at one of the n(n-1) pairs after R
 * rounds with probability at most n(n-1)(1-p)^R; we want that below
 * eps = 1e-3, so R = ln(n(n-1)/eps) / -ln(1-p) rounds: 45 for n = 5, 34 for
 * n = 4. Before the first round, a link that was down or a connection still
 * dialling can hold frames for up to connectTimeout (a pooled dial that
 * started during the fault fails only then; TCP's retransmission backoff after
 * a fault of a few seconds is shorter). So:
 *
 *   bound = connectTimeout + (R + 1) * INTERVAL    (14.2 s for n = 5)
 */
export function convergenceBound (n: number, interval = INTERVAL, connectTimeout = CONNECT_TIMEOUT, eps = 1e-3): { ms: number; rounds: number } {
  const p = 1 / n;
  const rounds = Math.ceil(Math.log((n * (n - 1)) / eps) / -Math.log(1 - p));
  return { ms: connectTimeout + (rounds + 1) * interval, rounds };
}

interface Peer {
  id: string;
  index: number;
  run: number;
  child: ChildProcess | undefined;
  live: boolean;
  view: Record<string, number>;
  waiters: Array<{ event: string; resolve: (line: Record<string, unknown>) => void }>;
  inboundErrors: Record<string, number>;
  delivered: number;
}

interface Result {
  mode: string;
  fault: string;
  converged: number | undefined;
  bound: number;
  ledger: { sent: number; delivered: number; certain: number; maybe: number; missing: number; uncounted: number; unbalanced: LedgerRow[] };
  notes: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A fault proxy in front of one host, in that host's namespace, in its own process. */
interface Proxy { child: ChildProcess; waiters: Array<(line: Record<string, unknown>) => void> }

class Cluster {
  readonly peers: Peer[];
  private readonly proxies: Proxy[] = [];
  readonly ledger = new Ledger();
  private mark = 0;
  /** Files: caFiles and certificate name per peer, changed by rotation. */
  caFiles = ['ca.crt'];
  certSuffix = '';

  constructor (readonly topo: Topology, readonly certDir: string, readonly mode: 'keepAlive' | 'per-message') {
    this.peers = Array.from({ length: HOSTS }, (_, i) => ({
      id: `host-${i + 1}`, index: i, run: 0, child: undefined, live: false, view: {}, waiters: [], inboundErrors: {}, delivered: 0
    }));
  }

  /** Starts a proxy on each host: peers are told its port, it forwards to the peer's own. */
  async startProxies (): Promise<void> {
    const script = join(__dirname, '..', '..', 'support', 'fault-proxy.js');
    await Promise.all(this.peers.map(async (_peer, i) => {
      const address = this.topo.addressOf(i + 1);
      const config = { listen: { host: address, port: PROXY_PORT }, target: { host: address, port: LISTEN_PORT } };
      const child = spawn('ip', ['netns', 'exec', this.topo.hosts[i]!, process.execPath, script, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const proxy: Proxy = { child, waiters: [] };
      this.proxies[i] = proxy;
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line) as Record<string, unknown>;
        const waiter = proxy.waiters.shift();
        waiter?.(message);
      });
      await new Promise((resolve) => proxy.waiters.push(resolve));
    }));
  }

  /** Sends one command to host i's proxy and waits for its answer. */
  proxy (i: number, command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const proxy = this.proxies[i]!;
    return new Promise((resolve) => {
      proxy.waiters.push(resolve);
      proxy.child.stdin!.write(JSON.stringify(command) + '\n');
    });
  }

  private idOf (address: string): string | undefined {
    const [host, port] = address.split(':');
    if (Number(port) !== PROXY_PORT) return undefined;
    const i = this.peers.findIndex((p) => this.topo.addressOf(p.index + 1) === host);
    return i < 0 ? undefined : this.peers[i]!.id;
  }

  private onLine (peer: Peer, run: number, line: string): void {
    if (process.env.CHAOS_LOG) appendFileSync(process.env.CHAOS_LOG, `${Date.now()} ${peer.id}#${run} ${line}\n`);
    let message: Record<string, unknown>;
    try { message = JSON.parse(line) as Record<string, unknown>; } catch { return; }
    const self = `${peer.id}#${run}`;
    switch (message.event) {
      case 'sent': {
        const to = this.idOf(message.to as string);
        this.ledger.sent(self, to ?? `? ${message.to}`);
        break;
      }
      case 'delivered':
        this.ledger.delivered(`${message.from}#${message.run}`, peer.id);
        peer.delivered++;
        break;
      case 'error': {
        const to = this.idOf(message.to as string);
        if (to !== undefined) this.ledger.reported(self, to, message as { framesDropped?: number });
        else peer.inboundErrors[message.code as string] = (peer.inboundErrors[message.code as string] ?? 0) + 1;
        break;
      }
      case 'view':
        if (run === peer.run) peer.view = message.marks as Record<string, number>;
        break;
    }
    for (const waiter of [...peer.waiters]) {
      if (waiter.event === message.event || (message.event === 'done' && waiter.event === `done:${message.cmd}`)) {
        peer.waiters.splice(peer.waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    }
  }

  private wait (peer: Peer, event: string, ms = 10000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${peer.id}: no ${event} within ${ms} ms`)), ms);
      peer.waiters.push({ event, resolve: (line) => { clearTimeout(timer); resolve(line); } });
    });
  }

  /** Starts (or restarts) host i with its current certificate, or `cert` instead. */
  async start (i: number, cert?: string): Promise<void> {
    const peer = this.peers[i]!;
    peer.run++;
    const run = peer.run;
    const config: PeerConfig = {
      id: peer.id,
      advertise: this.topo.addressOf(i + 1),
      bind: this.topo.addressOf(i + 1),
      certDir: this.certDir,
      all: this.peers.map((p) => p.id),
      interval: INTERVAL,
      port: LISTEN_PORT,
      advertisePort: PROXY_PORT,
      cert: cert ?? `${peer.id}${this.certSuffix}`,
      caFiles: this.caFiles,
      options: { keepAlive: this.mode === 'keepAlive' },
      // One seed for all, as a real deployment would: with every peer seeding every other, a
      // cluster of five can settle as two islands (gossipmonger stops asking seeds once it
      // knows one live peer, and digests only name live peers).
      seeds: i === 0 ? [] : [{ id: this.peers[0]!.id, host: this.topo.addressOf(1), port: PROXY_PORT }],
      // A restarted peer must not reuse version numbers its earlier run gave out.
      clock: Date.now() * 1000,
      run,
      updateEvery: UPDATE_EVERY,
      ledger: true
    };
    const script = join(__dirname, '..', '..', 'support', 'netns-peer.js');
    const child = spawn('ip', ['netns', 'exec', this.topo.hosts[i]!, process.execPath, script, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin!.on('error', () => {});
    peer.child = child;
    peer.view = {};
    peer.delivered = 0;
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(peer, run, line));
    child.once('exit', () => { if (peer.child === child) { peer.child = undefined; peer.live = false; } });
    await this.wait(peer, 'listening');
    peer.live = true;
  }

  /** SIGKILL: whatever the process held is gone, and it reports nothing more. */
  async kill (i: number): Promise<void> {
    const peer = this.peers[i]!;
    const child = peer.child;
    if (!child) return;
    peer.live = false;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.ledger.crashed(`${peer.id}#${peer.run}`);
  }

  /** Sends a command to each peer (the same, or one made per peer) and waits until each has run it. */
  async command (peers: Peer[], command: Record<string, unknown> | ((peer: Peer) => Record<string, unknown>)): Promise<void> {
    await Promise.all(peers.map(async (peer) => {
      const line = typeof command === 'function' ? command(peer) : command;
      const done = this.wait(peer, `done:${line.cmd as string}`);
      peer.child!.stdin!.write(JSON.stringify(line) + '\n');
      await done;
    }));
  }

  get live (): Peer[] {
    return this.peers.filter((p) => p.live);
  }

  async faults (i: number, faults: Faults): Promise<void> {
    await this.proxy(i, { cmd: 'faults', faults });
  }

  /**
   * Sets a new mark in every live peer's value and returns the ms until every
   * live peer sees every other live peer's value with it, or undefined past `limit`.
   */
  async converge (limit: number, among = this.live): Promise<number | undefined> {
    const mark = ++this.mark;
    const started = Date.now();
    await this.command(among, { cmd: 'mark', mark });
    while (Date.now() - started < limit) {
      const done = among.every((peer) => among.every((other) => other === peer || (peer.view[other.id] ?? 0) >= mark));
      if (done) return Date.now() - started;
      await sleep(10);
    }
    return undefined;
  }

  /** Stops gossip, lets what is in flight land or fail, and returns the ledger. */
  async settle (resume = true): Promise<Result['ledger']> {
    const live = this.live;
    await this.command(live, { cmd: 'pause' });
    const started = Date.now();
    // A dial in progress fails by connectTimeout at the latest; then every frame is accounted for.
    await sleep(300);
    while (this.ledger.totals().unbalanced.length > 0 && Date.now() - started < CONNECT_TIMEOUT + 1500) await sleep(50);
    const totals = this.ledger.totals();
    if (resume) await this.command(live, { cmd: 'resume' });
    return totals;
  }

  async stop (): Promise<void> {
    const children = [...this.peers.map((peer) => peer.child), ...this.proxies.map((proxy) => proxy.child)];
    for (const peer of this.peers) peer.live = false;
    await Promise.all(children.map(async (child) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }));
  }
}

/** Writes certificates: a first CA and a second one for the rotation, and the bad certificates. */
async function makeCerts (dir: string, topo: Topology): Promise<void> {
  const write = (name: string, pem: Pem): void => {
    writeFileSync(join(dir, `${name}.crt`), pem.cert);
    writeFileSync(join(dir, `${name}.key`), pem.key, { mode: 0o600 });
  };
  const ca1 = await makeCa('chaos CA 1');
  const ca2 = await makeCa('chaos CA 2');
  write('ca', ca1);
  write('ca2', ca2);
  for (let i = 1; i <= HOSTS; i++) {
    const subject = { cn: `host-${i}`, ips: [topo.addressOf(i)] };
    write(`host-${i}`, await makePeer(ca1, subject));
    write(`host-${i}.next`, await makePeer(ca2, subject));
  }
  const last = { cn: `host-${HOSTS}`, ips: [topo.addressOf(HOSTS)] };
  write(`host-${HOSTS}.expired`, await makePeer(ca2, { ...last, notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) }));
  write(`host-${HOSTS}.revoked`, await makePeer(ca2, last));
  writeFileSync(join(dir, 'ca2.crl'), makeCrl(dir, 'ca2', `host-${HOSTS}.revoked`));
}

/** A CRL from `ca` revoking `cert`, made by the openssl command line. */
function makeCrl (dir: string, ca: string, cert: string): string {
  const work = join(dir, 'crl');
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'index.txt'), '');
  writeFileSync(join(work, 'crlnumber'), '01\n');
  writeFileSync(join(work, 'openssl.cnf'), [
    '[ ca ]', 'default_ca = chaos', '[ chaos ]',
    `database = ${join(work, 'index.txt')}`, `crlnumber = ${join(work, 'crlnumber')}`,
    'default_md = sha256', 'default_crl_days = 30', ''
  ].join('\n'));
  const args = ['-config', join(work, 'openssl.cnf'), '-keyfile', join(dir, `${ca}.key`), '-cert', join(dir, `${ca}.crt`)];
  execFileSync('openssl', ['ca', ...args, '-revoke', join(dir, `${cert}.crt`)], { stdio: 'pipe' });
  return execFileSync('openssl', ['ca', ...args, '-gencrl'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

type Step = { name: string; run: (c: Cluster) => Promise<{ converged: number | undefined; bound: number; notes?: string }> };

const all = (c: Cluster): number[] => c.peers.map((p) => p.index);
const last = HOSTS - 1;

function steps (ns: Namespaces, topo: Topology): Step[] {
  const full = convergenceBound(HOSTS).ms;
  const converge = async (c: Cluster, among?: Peer[]): Promise<{ converged: number | undefined; bound: number }> => {
    const bound = convergenceBound((among ?? c.live).length).ms;
    return { converged: await c.converge(bound * 2, among), bound };
  };
  return [
    {
      name: 'start (5 hosts)',
      run: async (c) => {
        await Promise.all(all(c).map((i) => c.start(i)));
        return converge(c);
      }
    },
    {
      name: 'partition host-5 4 s (link down), heal',
      run: async (c) => {
        ns.link(topo.hosts[last]!, 'down');
        await sleep(4000);
        ns.link(topo.hosts[last]!, 'up');
        return converge(c);
      }
    },
    {
      name: 'SIGKILL host-3 mid-traffic, restart same id',
      run: async (c) => {
        await c.kill(2);
        await sleep(1000);
        await c.start(2);
        return converge(c);
      }
    },
    {
      name: 'slow link to host-2 (150 ms, 16 KB/s)',
      run: async (c) => {
        await c.faults(1, { latency: 150, bandwidth: 16 * 1024 });
        await sleep(2000);
        // Measured while the link is still slow.
        const result = await converge(c);
        await c.faults(1, {});
        return { ...result, notes: 'measured under the fault' };
      }
    },
    {
      name: 'host-4 stops reading 3 s (stall), resumes',
      run: async (c) => {
        await c.faults(3, { stall: true });
        await sleep(3000);
        await c.faults(3, {});
        return converge(c);
      }
    },
    {
      name: 'connections to host-1 reset mid-frame for 2 s',
      run: async (c) => {
        // Past a TLS 1.3 handshake with a client certificate (about 1.2 KB), inside the frames.
        await c.faults(0, { resetAtByte: 1800 });
        await c.proxy(0, { cmd: 'resetAll' });
        await sleep(2000);
        await c.faults(0, {});
        return converge(c);
      }
    },
    {
      name: 'rotation under load: CA 1 -> CA 2 (overlap, then drop CA 1)',
      run: async (c) => {
        const live = c.live;
        await c.command(live, { cmd: 'tls', tls: { ca: ['ca.crt', 'ca2.crt'] } });
        await sleep(1000);
        await c.command(live, (peer) => ({ cmd: 'tls', tls: { ca: ['ca.crt', 'ca2.crt'], cert: `${peer.id}.next` } }));
        await sleep(1000);
        await c.command(live, { cmd: 'tls', tls: { ca: ['ca2.crt'] } });
        c.caFiles = ['ca2.crt'];
        c.certSuffix = '.next';
        return converge(c);
      }
    },
    {
      name: 'host-5 restarted with an expired certificate',
      run: async (c) => {
        await c.kill(last);
        await c.start(last, `host-${HOSTS}.expired`);
        const rest = c.live.filter((p) => p.index !== last);
        const result = await converge(c, rest);
        const refused = refusedFrom(c, last);
        await c.kill(last);
        return { ...result, notes: refused };
      }
    },
    {
      name: 'host-5 restarted with a revoked certificate',
      run: async (c) => {
        const rest = c.live;
        await c.command(rest, { cmd: 'tls', tls: { crl: 'ca2.crl' } });
        await c.start(last, `host-${HOSTS}.revoked`);
        const result = await converge(c, rest);
        const refused = refusedFrom(c, last);
        await c.kill(last);
        return { ...result, notes: refused };
      }
    },
    {
      name: 'host-5 back with a valid certificate',
      run: async (c) => {
        await c.start(last);
        const result = await converge(c);
        return { ...result, bound: full };
      }
    }
  ];
}

/** The peer with a bad certificate got nothing through, in either direction. */
function refusedFrom (c: Cluster, i: number): string {
  const bad = c.peers[i]!;
  const fromBad = c.ledger.rows().filter((r) => r.from === `${bad.id}#${bad.run}`).reduce((n, r) => n + r.delivered, 0);
  const toBad = bad.delivered;
  if (fromBad > 0 || toBad > 0) failures.push(`${bad.id} (bad certificate): ${fromBad} frame(s) delivered from it, ${toBad} to it`);
  const codes = new Map<string, number>();
  for (const p of c.peers) for (const [code, n] of Object.entries(p.inboundErrors)) codes.set(code, (codes.get(code) ?? 0) + n);
  return `frames delivered from it ${fromBad}, to it ${toBad}; inbound errors on the cluster so far: ${[...codes].map(([k, n]) => `${k} ${n}`).join(', ')}`;
}

const failures: string[] = [];

function table (results: Result[]): string {
  const lines = [
    '| mode | fault | converged in | bound | frames sent | delivered | reported lost | maybe lost | missing | balanced |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
  ];
  for (const r of results) {
    const l = r.ledger;
    lines.push(`| ${r.mode} | ${r.fault} | ${r.converged === undefined ? 'NOT converged' : `${(r.converged / 1000).toFixed(2)} s`} | ${(r.bound / 1000).toFixed(1)} s | ${l.sent} | ${l.delivered} | ${l.certain} | ${l.maybe} | ${l.missing} | ${l.unbalanced.length === 0 ? 'yes' : `NO (${l.unbalanced.length} pairs)`} |`);
  }
  return lines.join('\n');
}

/** Ledger totals per sender and per destination, incarnations of a host added up. */
function byPeer (ledger: Ledger): string {
  const lines = ['| host | sent | delivered to others | reported lost | maybe lost | missing | received |', '| --- | --- | --- | --- | --- | --- | --- |'];
  const rows = ledger.rows();
  const hosts = [...new Set(rows.map((r) => r.to).concat(rows.map((r) => r.from.split('#')[0]!)))].sort();
  for (const host of hosts) {
    const out = rows.filter((r) => r.from.split('#')[0] === host);
    const sum = (key: 'sent' | 'delivered' | 'certain' | 'maybe' | 'missing'): number => out.reduce((n, r) => n + r[key], 0);
    const received = rows.filter((r) => r.to === host).reduce((n, r) => n + r.delivered, 0);
    lines.push(`| ${host} | ${sum('sent')} | ${sum('delivered')} | ${sum('certain')} | ${sum('maybe')} | ${sum('missing')} | ${received} |`);
  }
  return lines.join('\n');
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2);
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
  const modeArg = argv.includes('--mode') ? argv[argv.indexOf('--mode') + 1] : undefined;
  const why = namespacesUnavailable();
  if (why) {
    process.stdout.write(`chaos suite not run: ${why}\n`);
    return;
  }
  const ns = new Namespaces('gmch', '198.18.1');
  const certDir = mkdtempSync(join(tmpdir(), 'gm-chaos-'));
  const results: Result[] = [];
  const ledgers = new Map<string, Ledger>();
  const started = Date.now();
  try {
    const topo = ns.build(HOSTS);
    const { ms, rounds } = convergenceBound(HOSTS);
    process.stdout.write(`chaos: ${HOSTS} hosts, GOSSIP_INTERVAL ${INTERVAL} ms, bound = connectTimeout ${CONNECT_TIMEOUT} ms + (${rounds} + 1) rounds = ${ms} ms\n`);
    for (const mode of ['keepAlive', 'per-message'] as const) {
      if (modeArg !== undefined && modeArg !== mode) continue;
      await makeCerts(certDir, topo);
      const cluster = new Cluster(topo, certDir, mode);
      ledgers.set(mode, cluster.ledger);
      try {
        await cluster.startProxies();
        const list = steps(ns, topo).filter((step) => only === undefined || step.name.includes(only) || step.name.startsWith('start'));
        for (const [n, step] of list.entries()) {
          process.stderr.write(`[${mode}] ${step.name}...\n`);
          const outcome = await step.run(cluster);
          // After the last fault gossip stays paused, so the totals below are the ones checked.
          const ledger = await cluster.settle(n < list.length - 1);
          const result: Result = { mode, fault: step.name, converged: outcome.converged, bound: outcome.bound, ledger, notes: outcome.notes ?? '' };
          results.push(result);
          if (outcome.converged === undefined || outcome.converged > outcome.bound) failures.push(`[${mode}] ${step.name}: converged ${outcome.converged ?? 'never'} (bound ${outcome.bound} ms)`);
          for (const row of ledger.unbalanced) failures.push(`[${mode}] after ${step.name}: ${row.from} -> ${row.to} unbalanced: ${JSON.stringify(row)}`);
          process.stderr.write(`   converged ${outcome.converged} ms; ledger sent ${ledger.sent} delivered ${ledger.delivered} lost ${ledger.certain} maybe ${ledger.maybe} missing ${ledger.missing}${outcome.notes ? `; ${outcome.notes}` : ''}\n`);
        }
      } finally {
        await cluster.stop();
      }
    }
  } finally {
    ns.destroy();
    rmSync(certDir, { recursive: true, force: true });
  }
  process.stdout.write(table(results) + '\n');
  for (const [mode, ledger] of ledgers) process.stdout.write(`\n${mode}: ledger by sender and by destination (all incarnations)\n${byPeer(ledger)}\n`);
  for (const r of results) if (r.notes) process.stdout.write(`- [${r.mode}] ${r.fault}: ${r.notes}\n`);
  process.stdout.write(`chaos: ${results.length} steps in ${((Date.now() - started) / 1000).toFixed(0)} s; ${failures.length === 0 ? 'all converged within the bound and every ledger balanced' : `${failures.length} failure(s)`}\n`);
  for (const failure of failures) process.stdout.write(`FAIL ${failure}\n`);
  if (failures.length > 0) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`chaos: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
