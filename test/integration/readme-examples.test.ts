/**
 * Every ```js block of the README runs as written, as a user would run it: in
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
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../scripts/typed-packages';

const root = join(__dirname, '..', '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

interface Block { heading: string; code: string }

/** Each ```js block with the heading it sits under. */
function blocks (): Block[] {
  const found: Block[] = [];
  let heading = '';
  const lines = readme.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (/^```(js|javascript|ts|typescript)$/.test(line)) {
      const body: string[] = [];
      while (!lines[++i]!.startsWith('```')) body.push(lines[i]!);
      found.push({ heading, code: body.join('\n') });
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

describe('README examples', function () {
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

  it('has the examples this test expects (plain, TLS, mutual TLS, diagnostics, Prometheus)', () => {
    expect(all.length).to.be.at.least(5);
    expect(all.map((b) => b.heading)).to.include.members(['A node over plain TCP (what 0.1.6 did)', 'TLS', 'Mutual TLS', '`diagnostics_channel`', 'Prometheus']);
  });

  all.forEach((block, i) => {
    it(`runs the example under "${block.heading}" (block ${i + 1}) and ends cleanly`, async () => {
      const outcome = await outcomes.get(i)!;
      const report = `stdout:\n${outcome.stdout}\nstderr:\n${outcome.stderr}`;
      expect(outcome.signal, report).to.equal(null);
      expect(outcome.code, report).to.equal(0);
      expect(outcome.stderr, report).to.not.match(/^\s+at /m);
      expect(outcome.stderr, report).to.not.match(/Unhandled|uncaught/i);
      if (block.code.includes('METRICS_PORT')) expect(outcome.metrics, report).to.match(/^gossip_transport_connections_open \d+$/m);
      if (block.heading === 'Mutual TLS') expect(outcome.stdout).to.include('replicated each other over mutual TLS');
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
