/**
 * Every ```js block of the README and of docs/ runs as written, as a user would run it: in
 * a folder of its own where the package and gossipmonger are installed, with
 * certificates written by the package's own `gossipmonger-tls-certs` command.
 *
 * A block either finishes by itself (exit code 0), or is a server: it prints a
 * line with "listening", survives a bare TCP connect-and-close (the probe that
 * used to crash a node without an 'error' listener), reloads on SIGHUP if it
 * handles it, serves /metrics if it has METRICS_PORT, and exits 0 on SIGTERM.
 * Either way no stack trace (an uncaught error) may appear. All blocks run at
 * once, each in its own process, to keep the suite quick.
 */
import { expect } from 'chai';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../scripts/typed-packages';

const root = join(__dirname, '..', '..', '..');
/** The documents whose examples run: the README, then docs/ in name order. */
const documents = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

interface Block { file: string; heading: string; code: string }

/** The README's cluster program (run by 'the README cluster' below, with its command lines). */
const CLUSTER_FILE = /^\/\/ cluster\.js:/;
/** Fragments of a procedure that a test of their own runs (test/integration/migration.test.ts). */
const FRAGMENT = /^\/\/ Migration to TLS/;

/** Each ```js block of every document with the heading it sits under, but the cluster program and fragments. */
function blocks (): Block[] {
  return documents.flatMap((file) => allBlocks('js', file)).filter((block) => !CLUSTER_FILE.test(block.code) && !FRAGMENT.test(block.code));
}

/**
 * Each block of `language` (js: js, javascript; sh: sh, shell, bash) in `file`, with the heading
 * it sits under. TypeScript blocks are compiled by test/integration/module.test.ts.
 */
function allBlocks (language: 'js' | 'sh', file = 'README.md'): Block[] {
  const fence = language === 'js' ? /^```(js|javascript)$/ : /^```(sh|shell|bash)$/;
  const found: Block[] = [];
  let heading = '';
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (fence.test(line)) {
      const body: string[] = [];
      while (!lines[++i]!.startsWith('```')) body.push(lines[i]!);
      found.push({ file, heading, code: body.join('\n') });
    }
  }
  return found;
}

interface Outcome { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; server: boolean; metrics?: string }

/** Resolves when `child` has printed `pattern` on stdout, or rejects when it exits first. */
function printed (child: ChildProcess, output: { stdout: string }, pattern: RegExp): Promise<boolean> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (pattern.test(output.stdout)) { cleanup(); resolve(true); }
    };
    const onExit = (): void => { cleanup(); resolve(false); };
    const cleanup = (): void => { child.stdout!.off('data', check); child.off('exit', onExit); };
    child.stdout!.on('data', check);
    child.once('exit', onExit);
    check();
  });
}

function fetchText (port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** Runs the example with its GOSSIP_PORT already taken: a bind failure must be logged, not crash it. */
async function runOnTakenPort (dir: string, file: string): Promise<Outcome> {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as { port: number }).port;
  try {
    const child = spawn(process.execPath, [file], {
      cwd: dir,
      env: { ...process.env, NODE_DEBUG: '', GOSSIP_HOST: '127.0.0.1', GOSSIP_PORT: String(port), SEED_PORT: String(await freePort()), METRICS_PORT: String(await freePort()) },
      stdio: ['ignore', 'pipe', 'pipe']
    });
    const output = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output.stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output.stderr += chunk; });
    const guard = setTimeout(() => child.kill('SIGKILL'), 20000);
    const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null];
    clearTimeout(guard);
    return { code, signal, ...output, server: false };
  } finally {
    holder.close();
  }
}

async function run (dir: string, file: string, code: string): Promise<Outcome> {
  const [port, seedPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, [file], {
    cwd: dir,
    env: { ...process.env, NODE_DEBUG: '', GOSSIP_HOST: '127.0.0.1', GOSSIP_PORT: String(port), SEED_PORT: String(seedPort), METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'pipe', 'pipe']
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output.stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output.stderr += chunk; });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const guard = setTimeout(() => child.kill('SIGKILL'), 20000);
  let server = false;
  let metrics: string | undefined;
  try {
    if (await printed(child, output, /listening/)) {
      server = true;
      // A stranger's probe: connect, close, nothing said.
      const probe = connect({ host: '127.0.0.1', port });
      probe.on('error', () => {});
      await once(probe, 'connect');
      probe.destroy();
      if (code.includes('SIGHUP')) {
        child.kill('SIGHUP');
        await printed(child, output, /reloaded/);
      }
      if (code.includes('METRICS_PORT')) metrics = await fetchText(metricsPort);
      child.kill('SIGTERM');
    }
    const [exitCode, signal] = await exited;
    return { code: exitCode, signal, ...output, server, ...(metrics === undefined ? {} : { metrics }) };
  } finally {
    clearTimeout(guard);
  }
}

describe('README and docs examples', function () {
  this.timeout(30000);
  const all = blocks();
  let dir: string;
  const outcomes = new Map<number, Promise<Outcome>>();
  const taken = new Map<number, Promise<Outcome>>();

  before(async function () {
    this.timeout(30000);
    dir = mkdtempSync(join(tmpdir(), 'gm-readme-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(root, join(dir, 'node_modules', 'gossipmonger-tls-transport'), 'dir');
    for (const name of ['gossipmonger', 'prom-client']) symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name), 'dir');
    // The certificates the README tells users to make, made by the shipped command.
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, [join(root, pkg.bin['gossipmonger-tls-certs']!), '--out', join(dir, 'certs'),
        '--peer', 'node-a', '--peer', 'node-b', '--host', 'localhost', '--host', '127.0.0.1'], { timeout: 20000 },
      (error) => error ? reject(error) : resolve());
    });
    all.forEach((block, i) => {
      const file = join(dir, `example-${i}.js`);
      writeFileSync(file, block.code);
      const outcome = run(dir, file, block.code);
      outcome.catch(() => {});
      outcomes.set(i, outcome);
      if (block.code.includes('GOSSIP_PORT')) {
        const onTaken = runOnTakenPort(dir, file);
        onTaken.catch(() => {});
        taken.set(i, onTaken);
      }
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has the examples this test expects (certificate reload, NAT limits, monitoring)', () => {
    expect(all.map((b) => `${b.file}: ${b.heading}`)).to.include.members(['docs/operations.md: Reloading certificates', 'docs/operations.md: Peers behind NAT', 'docs/operations.md: Monitoring']);
  });

  all.forEach((block, i) => {
    it(`runs the example under "${block.heading}" (${block.file}, block ${i + 1}) and ends cleanly`, async () => {
      const outcome = await outcomes.get(i)!;
      const report = `stdout:\n${outcome.stdout}\nstderr:\n${outcome.stderr}`;
      expect(outcome.signal, report).to.equal(null);
      expect(outcome.code, report).to.equal(0);
      expect(outcome.stderr, report).to.not.match(/^\s+at /m);
      expect(outcome.stderr, report).to.not.match(/Unhandled|uncaught/i);
      if (block.code.includes('METRICS_PORT')) expect(outcome.metrics, report).to.match(/^gossip_transport_connections_open \d+$/m);
      if (block.code.includes('.listen(') && !outcome.server) expect(block.code, 'a server example must stop on its own').to.match(/close\(\)/);
      if (taken.has(i)) {
        // The second crash: EADDRINUSE with the listener attached too late.
        const busy = await taken.get(i)!;
        const busyReport = `on a taken port: stdout:\n${busy.stdout}\nstderr:\n${busy.stderr}`;
        expect(busy.signal, busyReport).to.equal(null);
        expect(busy.code, busyReport).to.equal(0);
        expect(busy.stderr, busyReport).to.match(/EADDRINUSE/).and.not.match(/^\s+at /m);
      }
    });
  });
});

/** One node of the README cluster: its command line as written, its process and what it printed. */
interface Node {
  id: string;
  mode: string;
  args: string[];
  env: Record<string, string>;
  child?: ChildProcess;
  stdout: string;
  stderr: string;
}

/** The README's cluster commands, by mode: `[GOSSIP_MODE=m] node cluster.js ...` and `npx gossipmonger-tls-certs ...`. */
function clusterCommands (): { certs: string[][]; nodes: Map<string, Array<{ env: Record<string, string>; args: string[] }>> } {
  const certs: string[][] = [];
  const nodes = new Map<string, Array<{ env: Record<string, string>; args: string[] }>>();
  for (const block of allBlocks('sh')) {
    for (const line of block.code.split('\n')) {
      const words = line.trim().split(/\s+/);
      const env: Record<string, string> = {};
      while (words.length > 0 && /^[A-Z_]+=/.test(words[0]!)) {
        const [name, value] = words.shift()!.split('=') as [string, string];
        env[name] = value;
      }
      if (words[0] === 'npx' && words[1] === 'gossipmonger-tls-certs') certs.push(words.slice(2));
      if (words[0] === 'node' && words[1] === 'cluster.js') {
        const mode = env.GOSSIP_MODE ?? 'plain';
        if (!nodes.has(mode)) nodes.set(mode, []);
        nodes.get(mode)!.push({ env, args: words.slice(2) });
      }
    }
  }
  return { certs, nodes };
}

function start (dir: string, node: Node): void {
  node.stdout = '';
  node.stderr = '';
  const child = spawn(process.execPath, ['cluster.js', ...node.args], { cwd: dir, env: { ...process.env, NODE_DEBUG: '', ...node.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { node.stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { node.stderr += chunk; });
  node.child = child;
}

/** Resolves when `node` has printed the greetings of `others`; rejects when it exits first or `ms` pass. */
function greeted (node: Node, others: string[], ms: number): Promise<void> {
  const heard = (): boolean => others.every((id) => node.stdout.includes(`${node.id}: ${id} says greeting = hello from ${id}\n`));
  const child = node.child!;
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    const fail = (why: string): Error => new Error(`${node.id} (${node.mode}) ${why} before it heard from ${others.join(', ')}:\n${node.stdout}\n${node.stderr}`);
    const check = (): void => { if (heard()) done(); };
    const onExit = (): void => done(fail('exited'));
    const timer = setTimeout(() => done(fail(`took ${ms} ms`)), ms);
    child.stdout!.on('data', check);
    child.once('exit', onExit);
    check();
  });
}

async function stopNode (node: Node): Promise<number | null> {
  const exited = once(node.child!, 'exit') as Promise<[number | null]>;
  // Ctrl-C, as a user stops it.
  node.child!.kill('SIGINT');
  const [code] = await exited;
  return code;
}

/** stderr lines other than the one report of an outage (ECONNREFUSED) that stopping a node may cause. */
function unexpected (node: Node): string[] {
  // Plain TCP is one connection per message: a message dialled the instant a
  // node stops can be in its accept queue when the listener closes (ECONNRESET).
  const allowed = node.mode === 'plain' ? /^node-[abc]: (ECONNREFUSED|ECONNRESET) / : /^node-[abc]: ECONNREFUSED /;
  return node.stderr.split('\n').filter((line) => line !== '' && !allowed.test(line));
}

/** What one mode's run of the README cluster showed. */
interface ClusterRun {
  nodes: Node[];
  /** stderr lines of node-a and node-b from node-c's Ctrl-C to its restart. */
  afterStop: string[];
  /** Exit codes: node-c's Ctrl-C, then every node's at the end. */
  exits: Array<number | null>;
}

/**
 * The README's three commands of one mode, run as written (ports mapped):
 * every node hears the others; node-c is stopped with Ctrl-C, the others
 * gossip on for a round, node-c is started again and catches up; then all
 * three are stopped.
 */
async function runCluster (dir: string, cluster: Node[]): Promise<ClusterRun> {
  const others = (node: Node): string[] => cluster.filter((other) => other !== node).map((other) => other.id);
  for (const node of cluster) start(dir, node);
  for (const node of cluster) await greeted(node, others(node), 30000);
  const [a, b, c] = cluster as [Node, Node, Node];
  const marks = [a.stderr.length, b.stderr.length];
  const exits = [await stopNode(c)];
  // A gossip round (1 s): the others dial the stopped node, or not; either way no connection error.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const afterStop = [a.stderr.slice(marks[0]), b.stderr.slice(marks[1])].join('').split('\n').filter(Boolean);
  start(dir, c);
  await greeted(c, others(c), 30000);
  for (const node of cluster) exits.push(await stopNode(node));
  return { nodes: cluster, afterStop, exits };
}

/**
 * The three modes' clusters start when mocha loads this file, so that they
 * run (about 10 s: gossip rounds of 1 s) while the rest of the suite does;
 * the tests below wait for their results. Each mode runs side by side in its
 * own three processes; the folder is removed once all are done.
 */
const clusters = (async () => {
  const { certs, nodes } = clusterCommands();
  const dir = mkdtempSync(join(tmpdir(), 'gm-cluster-'));
  const runs = new Map<string, Promise<ClusterRun>>();
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(root, join(dir, 'node_modules', 'gossipmonger-tls-transport'), 'dir');
    symlinkSync(join(root, 'node_modules', 'gossipmonger'), join(dir, 'node_modules', 'gossipmonger'), 'dir');
    const program = allBlocks('js').find((block) => CLUSTER_FILE.test(block.code));
    if (program === undefined) throw new Error('README has no cluster.js block');
    writeFileSync(join(dir, 'cluster.js'), program.code);
    // The certificate command as written, through the package's bin (what npx runs).
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    for (const args of certs) {
      await new Promise<void>((resolve, reject) => {
        execFile(process.execPath, [join(root, pkg.bin['gossipmonger-tls-certs']!), ...args], { cwd: dir, timeout: 20000 }, (error) => error ? reject(error) : resolve());
      });
    }
    for (const [mode, commands] of nodes) {
      // The README's ports (9001-9003) as free ones: one mapping per mode, in
      // every argument that names a port (the node's own, and its seeds').
      const ports = new Map<string, string>();
      for (const { args } of commands) if (/^\d+$/.test(args[1] ?? '')) ports.set(args[1]!, String(await freePort()));
      const mapped = (arg: string): string => ports.get(arg) ?? arg.replace(/:(\d+)$/, (whole, port: string) => ports.has(port) ? `:${ports.get(port)!}` : whole);
      const cluster: Node[] = commands.map(({ env, args }) => ({ id: args[0]!, mode, args: [args[0]!, ...args.slice(1).map(mapped)], env, stdout: '', stderr: '' }));
      const run = runCluster(dir, cluster).finally(() => {
        // A run that failed half-way leaves no process behind.
        for (const node of cluster) if (node.child?.exitCode === null) node.child.kill('SIGKILL');
      });
      run.catch(() => {});
      runs.set(mode, run);
    }
  } finally {
    void Promise.allSettled(runs.values()).then(() => rmSync(dir, { recursive: true, force: true }));
  }
  return { certs, nodes, runs };
})();
clusters.catch(() => {});

describe('the README cluster', function () {
  this.timeout(60000);

  it('has the cluster program, the certificate command and three nodes in each of plain, TLS and mutual TLS', async () => {
    const { certs, nodes } = await clusters;
    expect([...nodes.keys()].sort()).to.deep.equal(['mtls', 'plain', 'tls']);
    for (const [mode, commands] of nodes) expect(commands.map((c) => c.args[0]), mode).to.deep.equal(['node-a', 'node-b', 'node-c']);
    expect(certs.map((args) => args.join(' '))).to.include('--peer node-a --peer node-b --peer node-c --host localhost');
  });

  for (const mode of ['plain', 'tls', 'mtls']) {
    it(`[${mode}] every node prints the others' greetings; one stopped with Ctrl-C costs the others no error but ECONNREFUSED, and catches up when restarted`, async () => {
      const { nodes: cluster, afterStop, exits } = await (await clusters).runs.get(mode)!;
      const report = cluster.map((node) => `${node.id} stdout:\n${node.stdout}\nstderr:\n${node.stderr}`).join('\n');
      expect(exits, `every node exits 0 on Ctrl-C\n${report}`).to.deep.equal([0, 0, 0, 0]);
      expect(afterStop.filter((line) => !/ ECONNREFUSED /.test(line)), `after node-c stopped\n${report}`).to.deep.equal([]);
      for (const node of cluster) {
        expect(node.stdout, report).to.match(new RegExp(`^${node.id} listening on localhost:\\d+ \\(${mode}\\)$`, 'm'));
        expect(unexpected(node), report).to.deep.equal([]);
      }
    });
  }
});
