/**
 * Membership attacks and a joining cluster, with real gossipmonger@0.1.10
 * nodes, against this build or an older one:
 *
 *   npm run build && node dist/bench/membership.js [--before DIR] [--only TEXT] [--runs N]
 *
 * - isolation: a victim and an honest peer know each other; an attacker in
 *   its own process (127.0.0.2; under mutual TLS a member, peer-3, speaking
 *   as itself) sends the victim one digest naming 2,045 made-up peers. Then
 *   the honest peer updates a key: how many of the victim's gossip rounds
 *   until the victim has it, and where the victim's digests went meanwhile.
 *   Then a new member joins with the victim as its seed: is it admitted (each
 *   holds the other's key) within the round limit?
 * - squatting (mutual TLS + 'sender-id'): a member (peer-3, its own process)
 *   announces peer-2's id at its own address, before or after the real
 *   peer-2 joins (through another member): digests the real peer-2 receives
 *   from the victim within the window.
 * - joining: peers join one by one through one seed, gossip every 50 ms:
 *   time from the last join until every peer holds every other's key.
 *
 * --before DIR runs every case a second time against the build in DIR (a
 * checkout of an older commit, built), and prints both side by side. Each
 * case runs in a process of its own (`--case JSON`).
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { DEFAULT_CERT_DIR, generateCerts, loadPem } from '../scripts/generate-certs';
import { Gossipmonger, stopGossip, type Monger } from '../scripts/typed-packages';
import type { AttackPlan, AttackReport } from './attacker';
import type { SquatPlan } from './squatter';

const HOST = '127.0.0.1';
/** 'mtls' here is mutual TLS with authorize 'sender-id': certificates bind ids. */
export type MembershipMode = 'plain' | 'tls' | 'mtls';

/** The transport API these scenarios use: the same in every build. */
export interface AnyTransport extends NodeJS.EventEmitter {
  port: number;
  listen (callback: () => void): void;
  close (): Promise<void>;
  stats (): { errors: Record<string, number>; peers: Record<string, number>; connections: Record<string, number> };
}
export type TransportClass = new (options: Record<string, unknown>) => AnyTransport;

export interface Node {
  id: string;
  transport: AnyTransport;
  gossip: Monger;
  errors: Record<string, number>;
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `predicate` holds (true) or `limit` does (false). */
async function waitFor (predicate: () => boolean, limit: () => boolean, step = 5): Promise<boolean> {
  while (!predicate()) {
    if (limit()) return false;
    await sleep(step);
  }
  return true;
}

/** Options of a node in `mode` holding `cert`'s certificate; `extra` on top. */
export function optionsFor (mode: MembershipMode, cert: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  if (mode === 'plain') return { host: HOST, port: 0, ...extra };
  const { key, cert: crt } = loadPem(cert);
  const tls = { key, cert: crt, ca: loadPem('ca').cert, ...(mode === 'mtls' ? { requestCert: true, authorize: 'sender-id' } : {}) };
  return { host: HOST, port: 0, ...extra, tls };
}

/** A listening transport and a gossipmonger peer over it, gossiping every `interval` ms; its key is `key-<id>`. */
export async function startNode (Transport: TransportClass, mode: MembershipMode, id: string, seeds: Node[], interval: number, extra: Record<string, unknown> = {}): Promise<Node> {
  const transport = new Transport(optionsFor(mode, id, extra));
  const errors: Record<string, number> = {};
  transport.on('error', (error: { code?: string }) => { errors[error.code ?? '?'] = (errors[error.code ?? '?'] ?? 0) + 1; });
  await new Promise<void>((resolve) => transport.listen(resolve));
  const gossip = new Gossipmonger({ id, transport: { host: HOST, port: transport.port } }, {
    transport,
    GOSSIP_INTERVAL: interval,
    seeds: seeds.map((seed) => ({ id: seed.id, transport: { host: HOST, port: seed.transport.port } }))
  }) as Monger;
  gossip.on('error', () => {});
  gossip.update(`key-${id}`, 'v0');
  gossip.gossip();
  return { id, transport, gossip, errors };
}

export async function stopNodes (nodes: Node[]): Promise<void> {
  stopGossip(nodes.map((n) => n.gossip));
  await Promise.all(nodes.map((n) => n.transport.close()));
}

/** `a` holds `b`'s key at `value` (or any value). */
export function holds (a: Node, b: Node, key = `key-${b.id}`, value?: unknown): boolean {
  const cell = a.gossip.storage.get(b.id)?.data[key];
  return cell !== undefined && (value === undefined || cell[0] === value);
}

/** Counts a node's gossip rounds (gossipmonger's 'digest send'), and where its digests went. */
export function countRounds (node: Node): { rounds: () => number; to: Record<string, number>; stop: () => void } {
  const to: Record<string, number> = {};
  let rounds = 0;
  let last = -1;
  const onSend = (peer: { id?: string }): void => {
    // A round sends one digest to a live peer, and maybe one to a dead peer or a seed: count rounds by time.
    const now = Math.floor(performance.now());
    if (now !== last) rounds++;
    last = now;
    const where = peer.id ?? '?';
    to[where] = (to[where] ?? 0) + 1;
  };
  node.gossip.on('digest send', onSend);
  return { rounds: () => rounds, to, stop: () => node.gossip.removeListener('digest send', onSend) };
}

// ------------------------------------------------------------------ isolation

export interface IsolationResult {
  mode: MembershipMode;
  /** The victim's gossip rounds until it held the honest peer's update (undefined: not within the limit). */
  updateRounds: number | undefined;
  /** Of the victim's digests meanwhile: to the honest peer, to anyone else. */
  digestsToHonest: number;
  digestsToOthers: number;
  /** The victim's rounds until a new member joining through it was admitted both ways (undefined: not within the limit). */
  joinRounds: number | undefined;
  /** Peers in the victim's gossipmonger after the attack. */
  victimPeers: number;
  victimStats: Record<string, number>;
  victimErrors: Record<string, number>;
  attacker: AttackReport | undefined;
}

/** A port on 127.0.0.1 nothing listens on: made-up peers claim it, so sends to them fail at once. */
async function closedPort (): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Forks bench/attacker.js with `plan` against `port`; resolves with its report once it has sent everything. */
async function attackOnce (plan: Omit<AttackPlan, 'port'>, port: number): Promise<AttackReport | undefined> {
  const child = fork(join(__dirname, 'attacker.js'), [JSON.stringify({ ...plan, port, duration: 20000 })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let report: AttackReport | undefined;
  const finished = new Promise<void>((resolve) => child.on('message', (message: { type: string }) => {
    if (message.type === 'done') report = message as AttackReport;
    if (message.type === 'finished') resolve();
  }));
  const exited = once(child, 'exit');
  await Promise.race([finished, exited]);
  if (child.exitCode === null) child.send('stop');
  await exited;
  return report;
}

/**
 * `rounds`: how many of the victim's rounds each step may take. Under
 * attack-free conditions the victim gossips with the honest peer every other
 * round (it knows two live peers: the honest one and the attacker).
 */
export async function isolation (Transport: TransportClass, mode: MembershipMode, options: { interval: number; rounds: number; fakes?: number; extra?: Record<string, unknown> }): Promise<IsolationResult> {
  const { interval, rounds, extra = {} } = options;
  const nodes: Node[] = [];
  try {
    const victim = await startNode(Transport, mode, 'peer-1', [], interval, extra);
    nodes.push(victim);
    const honest = await startNode(Transport, mode, 'peer-2', [victim], interval, extra);
    nodes.push(honest);
    const ready = await waitFor(() => holds(victim, honest) && holds(honest, victim), () => false);
    if (!ready) throw new Error('victim and honest peer did not meet');
    // The attack: one digest of 2,045 made-up peers from 127.0.0.2 (under mutual TLS, from member peer-3 as itself).
    const attackerId = mode === 'mtls' ? 'peer-3' : 'attacker-127.0.0.2-0';
    let attacked = false;
    victim.transport.on('digest', (sender: { id: string }) => { if (sender.id === attackerId) attacked = true; });
    const tls = mode === 'plain' ? undefined : { ca: loadPem('ca').cert, ...(mode === 'mtls' ? loadPem('peer-3') : {}) };
    const attacker = await attackOnce({
      kind: 'poison', sources: ['127.0.0.2'], connections: 1, messages: 1, entries: options.fakes ?? 2045, fakeAddress: { host: HOST, port: await closedPort() },
      ...(mode === 'mtls' ? { senderId: 'peer-3' } : {}), ...(tls ? { tls } : {})
    }, victim.transport.port);
    await waitFor(() => attacked, () => false);
    // The honest peer's next update.
    const counter = countRounds(victim);
    honest.gossip.update('after', 'x');
    const gotUpdate = await waitFor(() => holds(victim, honest, 'after', 'x'), () => counter.rounds() > rounds);
    const updateRounds = gotUpdate ? counter.rounds() : undefined;
    counter.stop();
    const digestsToHonest = counter.to['peer-2'] ?? 0;
    const digestsToOthers = Object.entries(counter.to).reduce((sum, [id, n]) => id === 'peer-2' ? sum : sum + n, 0);
    // A new member joins with the victim as its seed.
    const joining = countRounds(victim);
    const member = await startNode(Transport, mode, 'peer-4', [victim], interval, extra);
    nodes.push(member);
    const admitted = await waitFor(() => holds(victim, member) && holds(member, victim), () => joining.rounds() > rounds);
    joining.stop();
    const storage = victim.gossip.storage;
    return {
      mode,
      updateRounds,
      digestsToHonest,
      digestsToOthers,
      joinRounds: admitted ? joining.rounds() : undefined,
      victimPeers: storage.livePeers().length + storage.deadPeers().length,
      victimStats: victim.transport.stats().peers,
      victimErrors: victim.errors,
      attacker
    };
  } finally {
    await stopNodes(nodes);
  }
}

// ------------------------------------------------------------------ contact flood

export interface FloodResult {
  sources: number;
  seconds: number;
  /** Peers in the victim's gossipmonger after the flood (the honest one included), and those it thinks live. */
  victimPeers: number;
  livePeers: number;
  /** The honest peer's update after the flood: victim rounds (undefined: not within the limit). */
  updateRounds: number | undefined;
  digestsToHonest: number;
  digestsToOthers: number;
  refusals: Record<string, number>;
  attacker: AttackReport | undefined;
}

/**
 * What plain mode cannot prevent: made-up ids proven by contact, each from a
 * connection of its own (a new sender id per connection), from `sources`
 * addresses for `seconds`, with every default (per-source limits included).
 */
export async function contactFlood (Transport: TransportClass, options: { sources: string[]; seconds: number; interval: number; rounds: number }): Promise<FloodResult> {
  const { interval, rounds } = options;
  const nodes: Node[] = [];
  try {
    const victim = await startNode(Transport, 'plain', 'peer-1', [], interval);
    nodes.push(victim);
    const honest = await startNode(Transport, 'plain', 'peer-2', [victim], interval);
    nodes.push(honest);
    await waitFor(() => holds(victim, honest) && holds(honest, victim), () => false);
    const child = fork(join(__dirname, 'attacker.js'), [JSON.stringify({
      kind: 'poison', sources: options.sources, connections: 8, messages: 1e6, entries: 0, distinctSenders: true, fakeAddress: { host: HOST, port: await closedPort() },
      port: victim.transport.port, duration: options.seconds * 1000
    } satisfies AttackPlan)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let attacker: AttackReport | undefined;
    child.on('message', (message: { type: string }) => { if (message.type === 'done') attacker = message as AttackReport; });
    await once(child, 'exit');
    const counter = countRounds(victim);
    honest.gossip.update('after', 'x');
    const got = await waitFor(() => holds(victim, honest, 'after', 'x'), () => counter.rounds() > rounds);
    counter.stop();
    const storage = victim.gossip.storage;
    return {
      sources: options.sources.length,
      seconds: options.seconds,
      victimPeers: storage.livePeers().length + storage.deadPeers().length,
      livePeers: storage.livePeers().length,
      updateRounds: got ? counter.rounds() : undefined,
      digestsToHonest: counter.to['peer-2'] ?? 0,
      digestsToOthers: Object.entries(counter.to).reduce((sum, [id, n]) => id === 'peer-2' ? sum : sum + n, 0),
      refusals: victim.transport.stats().connections as unknown as Record<string, number>,
      attacker
    };
  } finally {
    await stopNodes(nodes);
  }
}

// ------------------------------------------------------------------ squatting

export interface SquatResult {
  order: 'squatter-first' | 'member-first';
  /** Digests the real peer-2 received from the victim (peer-1) within the window. */
  fromVictim: number;
  /** Whose address the victim's gossipmonger holds for peer-2 at the end. */
  victimAddressOfReal: 'real' | 'squatter' | 'none' | 'other';
  /** Frames the squatter received, by sender. */
  squatterFramesIn: Record<string, number>;
  victimErrors: Record<string, number>;
  victimStats: Record<string, number>;
}

/**
 * Victim peer-1 and member peer-4 first; the squatter (peer-3, its own
 * process) announces peer-2 at its own address to the victim every
 * `interval` ms; the real peer-2 joins through peer-4, before the squatter
 * starts or after. Counts the victim's digests the real peer-2 receives from
 * its join for `window` ms (or until `enough` arrived).
 */
export async function squatting (Transport: TransportClass, lib: string, order: SquatResult['order'], options: { interval: number; window: number; enough?: number }): Promise<SquatResult> {
  const { interval, window } = options;
  const nodes: Node[] = [];
  const child = { current: undefined as ReturnType<typeof fork> | undefined };
  try {
    const victim = await startNode(Transport, 'mtls', 'peer-1', [], interval);
    nodes.push(victim);
    const other = await startNode(Transport, 'mtls', 'peer-4', [victim], interval);
    nodes.push(other);
    await waitFor(() => holds(victim, other) && holds(other, victim), () => false);
    let fromSquatter = 0;
    let squatterPort: number | undefined;
    let real: Node | undefined;
    victim.transport.on('digest', (sender: { id: string }) => { if (sender.id === 'peer-3') fromSquatter++; });
    const startSquatter = async (): Promise<void> => {
      const plan: SquatPlan = { lib, certs: DEFAULT_CERT_DIR, cert: 'peer-3', announce: 'peer-2', victimId: 'peer-1', victimPort: victim.transport.port, every: interval };
      const squatter = fork(join(__dirname, 'squatter.js'), [JSON.stringify(plan)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.current = squatter;
      squatter.on('message', (message: { type: string; port?: number }) => { if (message.type === 'ready') squatterPort = message.port; });
      const seenBefore = fromSquatter;
      await waitFor(() => fromSquatter >= seenBefore + 3, () => false);
    };
    let fromVictim = 0;
    const joinReal = async (): Promise<Node> => {
      const node = await startNode(Transport, 'mtls', 'peer-2', [other], interval);
      nodes.push(node);
      node.transport.on('digest', (sender: { id: string }) => { if (sender.id === 'peer-1') fromVictim++; });
      real = node;
      return node;
    };
    if (order === 'squatter-first') {
      await startSquatter();
      await joinReal();
    } else {
      const node = await joinReal();
      await waitFor(() => victim.gossip.storage.get(node.id) !== undefined, () => false);
      await startSquatter();
    }
    const started = performance.now();
    await waitFor(() => options.enough !== undefined && fromVictim >= options.enough, () => performance.now() - started > window);
    let squatterFramesIn: Record<string, number> = {};
    const squatter = child.current!;
    const done = new Promise<void>((resolve) => squatter.on('message', (message: { type: string; framesIn?: Record<string, number> }) => {
      if (message.type === 'done') {
        squatterFramesIn = message.framesIn ?? {};
        resolve();
      }
    }));
    squatter.send('stop');
    await Promise.race([done, once(squatter, 'exit')]);
    child.current = undefined;
    const held = (victim.gossip.storage.get('peer-2') as { transport?: { port?: number } } | undefined)?.transport?.port;
    const victimAddressOfReal = held === undefined ? 'none' : held === real?.transport.port ? 'real' : held === squatterPort ? 'squatter' : 'other';
    return { order, fromVictim, victimAddressOfReal, squatterFramesIn, victimErrors: victim.errors, victimStats: victim.transport.stats().peers };
  } finally {
    child.current?.kill();
    await stopNodes(nodes);
  }
}

// ------------------------------------------------------------------ joining

export interface JoinResult {
  mode: MembershipMode;
  peers: number;
  /** Every peer held every other's key this long after the last one joined (undefined: not within the limit). */
  convergedMs: number | undefined;
  /** The last peer to join was known to every other this long after it joined. */
  lastKnownMs: number | undefined;
  /** Every peer knew every other (gossipmonger's peer table) this long after the last one joined. */
  knownMs: number | undefined;
  /** CPU this process spent from the first join until the end (ms). */
  cpuMs: number;
  errors: Record<string, number>;
  /** Summed over the peers. */
  outbound: number;
  probes: number;
  refused: number;
}

/**
 * Peer 1 starts alone; every `every` ms one more joins with peer 1 as its
 * seed. The per-source limits are lifted (`extra`): every peer connects from
 * 127.0.0.1 here, which today's limits refuse (issue 21 makes them bite only
 * under contention).
 */
export async function joining (Transport: TransportClass, mode: MembershipMode, options: { peers: number; interval: number; every: number; limit: number; membershipOnly?: boolean; extra?: Record<string, unknown> }): Promise<JoinResult> {
  const { peers, interval, every, limit, extra = {} } = options;
  // Each peer holds a certificate of its own (peer-1 .. peer-N), as 'sender-id' needs.
  if (mode !== 'plain') await generateCerts({ peers });
  const nodes: Node[] = [];
  const cpu0 = process.cpuUsage();
  try {
    nodes.push(await startNode(Transport, mode, 'peer-1', [], interval, extra));
    for (let i = 2; i <= peers; i++) {
      await sleep(every);
      nodes.push(await startNode(Transport, mode, `peer-${i}`, [nodes[0]!], interval, extra));
    }
    const t0 = performance.now();
    const last = nodes[nodes.length - 1]!;
    let lastKnownMs: number | undefined;
    let knownMs: number | undefined;
    const converged = await waitFor(() => {
      if (lastKnownMs === undefined && nodes.every((n) => n === last || n.gossip.storage.get(last.id) !== undefined)) lastKnownMs = performance.now() - t0;
      if (knownMs === undefined && nodes.every((a) => nodes.every((b) => a === b || a.gossip.storage.get(b.id) !== undefined))) knownMs = performance.now() - t0;
      return (options.membershipOnly === true && knownMs !== undefined) || nodes.every((a) => nodes.every((b) => a === b || holds(a, b)));
    }, () => performance.now() - t0 > limit, 10);
    const convergedMs = converged ? performance.now() - t0 : undefined;
    const errors: Record<string, number> = {};
    for (const node of nodes) for (const [code, n] of Object.entries(node.errors)) errors[code] = (errors[code] ?? 0) + n;
    const stats = nodes.map((n) => n.transport.stats());
    const sum = (pick: (s: ReturnType<AnyTransport['stats']>) => number | undefined): number => stats.reduce((total, s) => total + (pick(s) ?? 0), 0);
    const cpu = process.cpuUsage(cpu0);
    return { mode, peers, convergedMs: options.membershipOnly === true ? undefined : convergedMs, lastKnownMs, knownMs, cpuMs: (cpu.user + cpu.system) / 1000, errors, outbound: sum((s) => s.connections.outbound), probes: sum((s) => s.peers.probes), refused: sum((s) => s.peers.refused) };
  } finally {
    await stopNodes(nodes);
  }
}

// ------------------------------------------------------------------ command line

/**
 * Runs one case in a process of its own (this file with `--case`), so that
 * cases can run side by side on several cores; resolves with its result.
 */
export async function inChild<R> (c: Case): Promise<R> {
  const child = fork(__filename, ['--case', JSON.stringify(c)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  const result = await Promise.race([once(child, 'message').then(([m]) => m as R), exited.then(() => undefined)]);
  await exited;
  if (result === undefined) throw new Error(`bench case ${c.kind} exited without a result`);
  return result;
}

export type Case =
  | { kind: 'isolation'; mode: MembershipMode; lib: string }
  | { kind: 'flood'; sources: number; lib: string }
  | { kind: 'squatting'; order: SquatResult['order']; lib: string }
  | { kind: 'joining'; mode: MembershipMode; lib: string; run: number; membershipOnly?: boolean; limit?: number };

const PER_SOURCE_LIFTED = { maxConnectionsPerSource: Infinity, connectionsPerSecondPerSource: Infinity };

async function runCase (c: Case): Promise<unknown> {
  const Transport = require(c.lib) as TransportClass;
  if (c.kind === 'isolation') return isolation(Transport, c.mode, { interval: 100, rounds: 100 });
  if (c.kind === 'flood') return contactFlood(Transport, { sources: Array.from({ length: c.sources }, (_, i) => `127.0.1.${i + 1}`), seconds: 5, interval: 100, rounds: 100 });
  if (c.kind === 'squatting') return squatting(Transport, c.lib, c.order, { interval: 100, window: 8000 });
  return joining(Transport, c.mode, { peers: 50, interval: 50, every: 50, limit: c.limit ?? 60000, membershipOnly: c.membershipOnly === true, extra: PER_SOURCE_LIFTED });
}

function describeCase (c: Case): string {
  if (c.kind === 'isolation') return `isolation [${c.mode}${c.mode === 'mtls' ? ' + sender-id' : ''}]: one digest of 2,045 fake peers`;
  if (c.kind === 'squatting') return `squatting [mtls + sender-id], ${c.order}`;
  if (c.kind === 'flood') return `contact flood [plain]: 5 s of one connection per made-up sender id from ${c.sources} address(es)`;
  return `joining [${c.mode}${c.mode === 'mtls' ? ' + sender-id' : ''}]: 50 peers, one every 50 ms, gossip every 50 ms (run ${c.run})`;
}

function summary (c: Case, r: unknown): string {
  if (c.kind === 'isolation') {
    const x = r as IsolationResult;
    return `honest update after ${x.updateRounds ?? 'never (>100)'} victim rounds (digests to honest ${x.digestsToHonest}, to others ${x.digestsToOthers}); ` +
      `new member admitted after ${x.joinRounds ?? 'never (>100)'} rounds; victim's gossipmonger holds ${x.victimPeers} peers; ` +
      `stats.peers ${JSON.stringify(x.victimStats)}; errors ${JSON.stringify(x.victimErrors)}`;
  }
  if (c.kind === 'flood') {
    const x = r as FloodResult;
    return `victim's gossipmonger holds ${x.victimPeers} peers (${x.livePeers} live); honest update after ${x.updateRounds ?? 'never (>100)'} victim rounds ` +
      `(digests to honest ${x.digestsToHonest}, to others ${x.digestsToOthers}); connections ${JSON.stringify(x.refusals)}; attacker ${JSON.stringify(x.attacker)}`;
  }
  if (c.kind === 'squatting') {
    const x = r as SquatResult;
    return `real peer-2 received ${x.fromVictim} digests from the victim in 8 s; the victim holds the ${x.victimAddressOfReal} address for peer-2; squatter received ${JSON.stringify(x.squatterFramesIn)}; victim errors ${JSON.stringify(x.victimErrors)}; stats.peers ${JSON.stringify(x.victimStats)}`;
  }
  const x = r as JoinResult;
  const s = (ms: number | undefined): string => ms === undefined ? 'never (>60 s)' : `${(ms / 1000).toFixed(2)} s`;
  return `after the last join: last joiner known by all ${s(x.lastKnownMs)}, every peer known by all ${s(x.knownMs)}, every key everywhere ${s(x.convergedMs)}; CPU ${(x.cpuMs / 1000).toFixed(1)} s; ` +
    `outbound ${x.outbound}, probes ${x.probes}, refused ${x.refused}; errors ${JSON.stringify(x.errors)}`;
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2);
  const caseAt = argv.indexOf('--case');
  if (caseAt !== -1) {
    const result = await runCase(JSON.parse(argv[caseAt + 1]!) as Case);
    process.send!(result, () => process.exit(0));
    return;
  }
  const beforeAt = argv.indexOf('--before');
  const onlyAt = argv.indexOf('--only');
  const runsAt = argv.indexOf('--runs');
  const only = onlyAt === -1 ? undefined : argv[onlyAt + 1];
  const runs = runsAt === -1 ? 1 : Number(argv[runsAt + 1]);
  const libs: Array<[string, string]> = [['after', resolve(__dirname, '..', 'src', 'index.js')]];
  if (beforeAt !== -1) libs.unshift(['before', resolve(argv[beforeAt + 1]!, 'dist', 'src', 'index.js')]);
  const cases: Array<Omit<Case, 'lib'>> = [
    ...(['plain', 'tls', 'mtls'] as const).map((mode) => ({ kind: 'isolation' as const, mode })),
    ...[1, 8].map((sources) => ({ kind: 'flood' as const, sources })),
    ...(['squatter-first', 'member-first'] as const).map((order) => ({ kind: 'squatting' as const, order })),
    ...Array.from({ length: runs }, (_, run) => (['plain', 'tls', 'mtls'] as const).map((mode) => ({ kind: 'joining' as const, mode, run: run + 1 }))).flat()
  ];
  await generateCerts({ peers: 50 });
  for (const spec of cases) {
    for (const [label, lib] of libs) {
      const c = { ...spec, lib } as Case;
      const name = describeCase(c);
      if (only !== undefined && !name.includes(only)) continue;
      console.log(`${name} [${label}]: ${summary(c, await inChild(c))}`);
    }
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
