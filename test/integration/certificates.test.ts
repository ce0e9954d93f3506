/**
 * Certificates as users get them: the shipped `gossipmonger-tls-certs`
 * command, the openssl recipe of docs/operations.md (run as written, then used for a
 * mutual-TLS exchange), and what a server-only certificate profile does.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCerts, makeCa, makePeer, parseArgs } from '../../scripts/generate-certs';
import { TcpTransport, closeAll, codeOf, record, track, until } from '../support/helpers';

const root = join(__dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const bin = join(root, pkg.bin['gossipmonger-tls-certs']!);

function run (file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 20000, ...options }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

type Tls = { key: string | Buffer; cert: string | Buffer; ca: string | Buffer };

interface Outcome { errors: Error[][]; delivered: string[][] }

/**
 * Two mutual-TLS transports with 'sender-id' on `host`; each sends the other a
 * digest. Waits until `settled` holds (by default: both delivered).
 */
async function exchange (host: string, a: { id: string; tls: Tls }, b: { id: string; tls: Tls },
  settled: (o: Outcome) => boolean = (o) => o.delivered.every((d) => d.length === 1)): Promise<Outcome> {
  const nodes = [a, b].map(({ id, tls }) => {
    const t = track(new TcpTransport({ host, port: 0, tls: { ...tls, requestCert: true, authorize: 'sender-id' } }));
    return { id, t, seen: record(t) };
  });
  await Promise.all(nodes.map(({ t }) => new Promise<void>((resolve) => t.listen(resolve))));
  const [x, y] = nodes as [typeof nodes[0], typeof nodes[0]];
  x.t.digest({ id: y.id, transport: { host, port: y.t.port } }, { id: x.id, transport: { host, port: x.t.port } }, []);
  y.t.digest({ id: x.id, transport: { host, port: x.t.port } }, { id: y.id, transport: { host, port: y.t.port } }, []);
  const outcome = (): Outcome => ({ errors: nodes.map(({ seen }) => seen.errors), delivered: nodes.map(({ seen }) => seen.digests.map((d) => (d[0] as { id: string }).id)) });
  await until(() => settled(outcome()) || nodes.some(({ seen }) => seen.errors.length > 2), 8000, 'both sends to settle').catch(() => {});
  return outcome();
}

describe('certificates', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'gm-certs-')); });
  afterEach(async () => {
    await closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('the gossipmonger-tls-certs command (package.json bin)', () => {
    it('starts with a node shebang and prints its usage with --help', async () => {
      expect(readFileSync(bin, 'utf8').split('\n')[0]).to.equal('#!/usr/bin/env node');
      const { code, stdout } = await run(process.execPath, [bin, '--help']);
      expect(code).to.equal(0);
      expect(stdout).to.match(/^Usage: gossipmonger-tls-certs/).and.include('--peer NAME[=HOST,...]').and.include('--out DIR');
    });

    it('writes a CA and named peers whose certificates serve both ends, name the peer and its hosts, and work for mutual TLS', async () => {
      const out = join(dir, 'cluster');
      const { code, stdout } = await run(process.execPath, [bin, '--out', out, '--peer', 'node-a=node-a.internal,10.0.0.5', '--peer', 'node-b', '--host', 'localhost']);
      expect(code, stdout).to.equal(0);
      const cert = (name: string): X509Certificate => new X509Certificate(readFileSync(join(out, `${name}.crt`)));
      const a = cert('node-a');
      expect(a.subject).to.equal('CN=node-a');
      expect(a.subjectAltName).to.equal('DNS:node-a.internal, DNS:localhost, IP Address:10.0.0.5');
      expect(a.keyUsage).to.include('1.3.6.1.5.5.7.3.1').and.include('1.3.6.1.5.5.7.3.2');
      expect(a.verify(cert('ca').publicKey)).to.equal(true);
      expect(cert('node-b').subjectAltName).to.equal('DNS:localhost');
      for (const name of ['ca', 'node-a', 'node-b']) expect(statSync(join(out, `${name}.key`)).mode & 0o777, name).to.equal(0o600);
      const load = (name: string): Tls => ({ key: readFileSync(join(out, `${name}.key`)), cert: readFileSync(join(out, `${name}.crt`)), ca: readFileSync(join(out, 'ca.crt')) });
      const { errors, delivered } = await exchange('localhost', { id: 'node-a', tls: load('node-a') }, { id: 'node-b', tls: load('node-b') });
      expect(errors).to.deep.equal([[], []]);
      expect(delivered).to.deep.equal([['node-b'], ['node-a']]);
    });

    it('keeps the CA and existing peers when a peer is added, and refuses bad arguments', async () => {
      const out = join(dir, 'cluster');
      // In process: the command itself is run by the tests above and below.
      expect((await generateCerts(parseArgs(['--out', out, '--peer', 'node-a']))).written).to.deep.equal(['ca', 'node-a']);
      const ca = readFileSync(join(out, 'ca.crt'), 'utf8');
      const nodeA = readFileSync(join(out, 'node-a.crt'), 'utf8');
      // The folder's CA is reused only when asked (--reuse-ca): see "refuses a CA it was not asked to reuse".
      expect((await generateCerts(parseArgs(['--out', out, '--peer', 'node-a', '--peer', 'node-c', '--reuse-ca']))).written).to.deep.equal(['node-c']);
      expect(readFileSync(join(out, 'ca.crt'), 'utf8')).to.equal(ca);
      expect(readFileSync(join(out, 'node-a.crt'), 'utf8')).to.equal(nodeA);
      for (const bad of [['--peer', '../evil'], ['--peer', 'ca'], ['--host', 'x'], ['--peer', 'a', '--peers', '2'], ['--peer', 'a=bad host'], ['--days', '0'], ['--frobnicate']]) {
        expect(() => parseArgs(bad), bad.join(' ')).to.throw(/--|unknown argument/);
      }
      const refused = await run(process.execPath, [bin, '--out', out, '--peer', '../evil']);
      expect(refused.code).to.equal(2);
      expect(refused.stderr).to.match(/^--peer \.\.\/evil: the name must be/);
    });

    it('says which CA it used (subject and SHA-256 fingerprint), and stops (exit 2) at a folder holding a CA without --reuse-ca', async () => {
      const out = join(dir, 'cluster');
      const first = await run(process.execPath, [bin, '--out', out, '--peer', 'node-a']);
      expect(first.code, first.stderr).to.equal(0);
      const ca = new X509Certificate(readFileSync(join(out, 'ca.crt')));
      expect(first.stdout).to.include(`new CA in ${out}: ${ca.subject}, SHA-256 ${ca.fingerprint256}`);
      const refused = await run(process.execPath, [bin, '--out', out, '--peer', 'node-b']);
      expect(refused.code).to.equal(2);
      expect(refused.stderr).to.include(ca.fingerprint256).and.include('--reuse-ca');
      const reused = await run(process.execPath, [bin, '--out', out, '--peer', 'node-b', '--reuse-ca']);
      expect(reused.code, reused.stderr).to.equal(0);
      expect(reused.stdout).to.include(`existing CA in ${out}: ${ca.subject}, SHA-256 ${ca.fingerprint256}`);
      const revoked = await run(process.execPath, [bin, '--out', out, '--revoke', 'node-b']);
      expect(revoked.code, revoked.stderr).to.equal(0);
      expect(revoked.stdout).to.include(ca.fingerprint256).and.match(/revoked node-b; wrote .*ca\.crl \(CRL number 1, 1 revoked/);
    });
  });

  describe('the openssl recipe of docs/operations.md', () => {
    const doc = readFileSync(join(root, 'docs', 'operations.md'), 'utf8');
    const section = doc.slice(doc.indexOf('### With openssl'));
    const scripts = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].slice(0, 2).map((m) => m[1]!);

    it('has two steps: the CA, then one certificate per node (NODE_ID, NODE_HOST)', () => {
      expect(scripts).to.have.length(2);
      expect(scripts[1]).to.match(/^NODE_ID=/m).and.match(/^NODE_HOST=/m);
    });

    it('runs as written, and its certificates carry a mutual-TLS exchange under \'sender-id\'', async function () {
      this.timeout(30000);
      const openssl = await run('sh', ['-c', 'command -v openssl']);
      // openssl is what the recipe is for; the transport itself never needs it.
      if (openssl.code !== 0) this.skip();
      const ca = await run('bash', ['-euo', 'pipefail', '-c', scripts[0]!], { cwd: dir });
      expect(ca.code, ca.stderr).to.equal(0);
      for (const id of ['node-a', 'node-b']) {
        // The two lines the recipe says to change per node.
        const script = scripts[1]!.replace(/^NODE_ID=.*$/m, `NODE_ID=${id}`).replace(/^NODE_HOST=.*$/m, 'NODE_HOST=localhost');
        const node = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd: dir });
        expect(node.code, node.stderr).to.equal(0);
      }
      const certA = new X509Certificate(readFileSync(join(dir, 'node-a.crt')));
      expect(certA.subject).to.equal('CN=node-a');
      expect(certA.subjectAltName).to.equal('DNS:localhost');
      expect(statSync(join(dir, 'node-a.key')).mode & 0o077, 'key readable by its owner only').to.equal(0);
      const load = (name: string): Tls => ({ key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.crt`)), ca: readFileSync(join(dir, 'ca.crt')) });
      const { errors, delivered } = await exchange('localhost', { id: 'node-a', tls: load('node-a') }, { id: 'node-b', tls: load('node-b') });
      expect(errors).to.deep.equal([[], []]);
      expect(delivered).to.deep.equal([['node-b'], ['node-a']]);
    });
  });

  it('a server-only certificate (EKU serverAuth alone) is refused as a client (INVALID_PURPOSE) and answers only over connections others open', async () => {
    const ca = await makeCa('profile test CA');
    const both = await makePeer(ca, { cn: 'node-a', dns: ['localhost'] });
    const serverOnly = await makePeer(ca, { cn: 'node-b', dns: ['localhost'], purposes: ['serverAuth'] });
    const [a, b] = [{ id: 'node-a', tls: both }, { id: 'node-b', tls: serverOnly }].map(({ id, tls }) => {
      const t = track(new TcpTransport({ host: 'localhost', port: 0, tls: { ...tls, ca: ca.cert, requestCert: true, authorize: 'sender-id' } }));
      return { id, t, seen: record(t) };
    }) as [{ id: string; t: TcpTransport; seen: ReturnType<typeof record> }, { id: string; t: TcpTransport; seen: ReturnType<typeof record> }];
    await Promise.all([a, b].map(({ t }) => new Promise<void>((resolve) => t.listen(resolve))));
    const peer = (n: typeof a): { id: string; transport: { host: string; port: number } } => ({ id: n.id, transport: { host: 'localhost', port: n.t.port } });
    // node-b dials node-a: as a client, node-b's certificate has the wrong purpose.
    b.t.digest(peer(a), peer(b), []);
    await until(() => a.seen.errors.length > 0 && b.seen.errors.length > 0, 8000, 'the refusal on both sides');
    const refused = a.seen.errors.find((e) => codeOf(e) === 'ERR_TLS_HANDSHAKE') as (Error & { reason?: string }) | undefined;
    expect(refused, a.seen.errors.map(String).join('; ')).to.not.equal(undefined);
    expect(refused!.reason).to.match(/INVALID_PURPOSE|unsupported certificate purpose/i);
    expect(b.seen.errors.map(codeOf)).to.include('ERR_TLS_REFUSED');
    expect(a.seen.digests).to.have.length(0);
    // node-a dials node-b: node-b's certificate is fine as a server's; and
    // node-b answers over that connection, which never needs its certificate as a client's.
    a.t.digest(peer(b), peer(a), []);
    await until(() => b.seen.digests.length === 1, 8000, 'node-a\'s digest at node-b');
    b.t.digest(peer(a), peer(b), []);
    await until(() => a.seen.digests.length === 1, 8000, 'node-b\'s answer at node-a');
    expect(b.t.stats().connections.outbound, 'node-b dialled once, the refused time').to.equal(1);
  });
});
