/**
 * The operator's procedures of the README ("Rotating the CA", "Revoking a
 * peer"), run command for command with the package's own
 * `gossipmonger-tls-certs` on a live three-node mutual-TLS gossipmonger
 * cluster under `authorize: 'sender-id'`: once with watchCertificates (the
 * nodes follow their files), once with setSecureContext (the nodes reload
 * the same files when told, as the README's SIGHUP handler does).
 *
 * Each step must keep the cluster replicating: after it, every node updates
 * a value and the time until every node holds every other node's new value
 * is measured (printed, and bounded only by the test's timeout: a partition
 * never converges).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gossipmonger, type Monger } from '../../scripts/typed-packages';
import type { CertificateWatch } from '../../src/options';
import { TcpTransport, closeAll, codeOf, track, until } from '../support/helpers';

const root = join(__dirname, '..', '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const bin = join(root, pkg.bin['gossipmonger-tls-certs']!);

/** The ```sh blocks of the README section under `heading`, in order. */
function shellBlocks (heading: string): string[] {
  const start = readme.indexOf(`### ${heading}\n`);
  expect(start, heading).to.be.above(-1);
  const end = readme.indexOf('\n### ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/**
 * Runs a README block as written with bash. `npx gossipmonger-tls-certs`
 * resolves to this package's bin, as it would for a user who installed it.
 */
function run (block: string, cwd: string, env: Record<string, string> = {}): Promise<string> {
  const npx = `npx () { if [ "$1" = gossipmonger-tls-certs ]; then shift; "${process.execPath}" "${bin}" "$@"; else command npx "$@"; fi; }\n`;
  return new Promise((resolve, reject) => {
    execFile('bash', ['-euo', 'pipefail', '-c', npx + block], { cwd, env: { ...process.env, ...env }, timeout: 20000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${block}\nfailed: ${stderr}`));
      else resolve(stdout);
    });
  });
}

const IDS = ['node-a', 'node-b', 'node-c'] as const;
type Via = 'watchCertificates' | 'setSecureContext';

interface Node {
  id: string;
  live: string;
  transport: TcpTransport;
  gossip: Monger;
  watch: CertificateWatch | undefined;
  errors: Error[];
}

const material = (live: string): { key: Buffer; cert: Buffer; ca: Buffer; crl: Buffer } => ({
  key: readFileSync(join(live, 'node.key')),
  cert: readFileSync(join(live, 'node.crt')),
  ca: readFileSync(join(live, 'ca.crt')),
  crl: readFileSync(join(live, 'crl.pem'))
});

/** Starts a node on the files of `live`, as the README describes it, and returns it. */
async function startNode (id: string, live: string, via: Via, seed: Node | undefined): Promise<Node> {
  const transport = track(new TcpTransport({ host: 'localhost', port: 0, tls: { ...material(live), requestCert: true, authorize: 'sender-id' } }));
  await new Promise<void>((resolve) => transport.listen(resolve));
  const gossip = new Gossipmonger({ id, transport: { host: 'localhost', port: transport.port } }, {
    transport,
    GOSSIP_INTERVAL: 50,
    seeds: seed === undefined ? [] : [{ id: seed.id, transport: { host: 'localhost', port: seed.transport.port } }]
  }) as Monger;
  const errors: Error[] = [];
  gossip.on('error', (error: Error) => errors.push(error));
  const watch = via === 'watchCertificates'
    ? transport.watchCertificates({ key: join(live, 'node.key'), cert: join(live, 'node.crt'), ca: join(live, 'ca.crt'), crl: join(live, 'crl.pem') })
    : undefined;
  return { id, live, transport, gossip, watch, errors };
}

/** True when every node of `nodes` holds `mark` from every other one of them. */
function holds (nodes: Node[], mark: string): boolean {
  return nodes.every((node) => nodes.every((other) => other === node || node.gossip.storage.get(other.id)?.data.mark?.[0] === mark));
}

/** Every node sets `mark`; resolves with the ms until every node holds every other's. */
async function converge (nodes: Node[], mark: string): Promise<number> {
  const started = performance.now();
  for (const node of nodes) node.gossip.update('mark', mark);
  const from = nodes.map((n) => n.errors.length);
  await until(() => holds(nodes, mark), 15000, `${nodes.map((n) => n.id).join(', ')} to converge on ${mark}`).catch((error: Error) => {
    const codes = codesSince(nodes, from);
    throw new Error(`${error.message}; errors meanwhile (${codes.length}): ${[...new Set(codes)].join(', ')}`);
  });
  return Math.round(performance.now() - started);
}

/** Error codes seen since `from` (per node index), with Node's reasons. */
function codesSince (nodes: Node[], from: number[]): string[] {
  return nodes.flatMap((node, i) => node.errors.slice(from[i]).map((e) => {
    const reason = (e as { reason?: string }).reason;
    return `${node.id}:${codeOf(e) ?? e.message}${reason === undefined ? '' : `(${reason})`}`;
  }));
}

/**
 * What a partitioning rotation produces: certificates or CRLs refused (as
 * Node's code, or as the reason of ERR_TLS_HANDSHAKE or ERR_PEER_UNTRUSTED),
 * our certificate refused, a reload refused. A handshake merely cut short
 * (ERR_TLS_HANDSHAKE(ECONNRESET): a dial abandoned by a rotation) is not one.
 */
const PARTITION = /UNABLE_TO_|SIGNATURE_FAILURE|_CRL|SELF_SIGNED|CERT_|ERR_TLS_REFUSED|ERR_CERT_RELOAD|ERR_PEER_UNTRUSTED/;

describe('CA lifecycle with gossipmonger-tls-certs (the README procedures on a live mutual-TLS cluster)', function () {
  this.timeout(60000);
  let dir: string;
  /** The CA machine's folder after its two README blocks (the first CA, then the next one). */
  let caMachine: string;
  const nodes: Node[] = [];
  const [start, deploy, next, step1, step2, step3, ...more] = shellBlocks('Rotating the CA');
  const [revoke, apply, ...evenMore] = shellBlocks('Revoking a peer');

  before(async function () {
    this.timeout(30000);
    expect([...more, ...evenMore], 'the README has seven rotation blocks and two revocation blocks').to.have.length(0);
    // The CA machine's work does not depend on the nodes: done once, in
    // README order, and copied for each run (each revokes in its own copy).
    caMachine = mkdtempSync(join(tmpdir(), 'gm-ca-machine-'));
    await run(start!, caMachine);
    await run(next!, caMachine);
  });
  after(() => rmSync(caMachine, { recursive: true, force: true }));
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gm-lifecycle-'));
    cpSync(caMachine, dir, { recursive: true, preserveTimestamps: true });
  });
  afterEach(async () => {
    for (const node of nodes.splice(0)) {
      node.gossip.stop();
      node.watch?.close();
    }
    await closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The cluster as the README starts it: each node's files from certs/ in its own folder, three nodes. */
  async function startCluster (via: Via): Promise<void> {
    // Each node is its own machine: the per-node commands run side by side.
    await Promise.all(IDS.map((id) => run(deploy!, dir, { NODE: id, LIVE: join(dir, 'live', id) })));
    for (const id of IDS) nodes.push(await startNode(id, join(dir, 'live', id), via, nodes[0]));
    for (const node of nodes) node.gossip.gossip();
  }

  /** One step on `targets`: the README block on each node, then the node picks it up (its way). */
  async function step (via: Via, block: string, targets: Node[]): Promise<void> {
    const applied = targets.map((node) => node.watch?.applied ?? 0);
    await Promise.all(targets.map((node) => run(block, dir, { NODE: node.id, LIVE: node.live })));
    if (via === 'setSecureContext') {
      for (const node of targets) node.transport.setSecureContext(material(node.live));
    } else {
      // Done on a node when its watcher has swapped the new files in.
      await until(() => targets.every((node, i) => node.watch!.applied > applied[i]!), 15000, 'every watcher to apply the step');
    }
  }

  for (const via of ['watchCertificates', 'setSecureContext'] as const) {
    it(`rotates the CA with the tool's folders and cat bundles, then revokes a peer with its CRL, by ${via}: every step keeps the cluster replicating`, async () => {
      await startCluster(via);
      const timings: Record<string, number> = { start: await converge(nodes, 'start') };

      // Rotation (the CA machine ran the README's "next CA" block in before()).
      // The two CAs the tool made have subjects of their own, and the cat bundle holds both.
      const subjects = ['certs', 'certs-next'].map((f) => new X509Certificate(readFileSync(join(dir, f, 'ca.crt'))).subject);
      expect(subjects[0]).to.not.equal(subjects[1]);
      expect(readFileSync(join(dir, 'trust.crt'), 'utf8').match(/^-----BEGIN CERTIFICATE-----$/gm)).to.have.length(2);
      const report: string[] = [];
      for (const [name, block] of [['step 1 (trust both CAs)', step1!], ['step 2 (new certificates)', step2!], ['step 3 (new CA alone)', step3!]] as const) {
        const seen = nodes.map((n) => n.errors.length);
        await step(via, block, nodes);
        timings[name] = await converge(nodes, name);
        const codes = codesSince(nodes, seen);
        report.push(`${name}: ${codes.length === 0 ? 'none' : codes.join(', ')}`);
        // No handshake refused, no reload refused. At step 3 only: a pooled
        // connection a node opened to a peer before that peer had its new
        // certificate still carries the old one (a server's certificate is
        // fixed for a connection's life); it is closed, reported once, and
        // reconnects (the convergence above shows nothing was cut off).
        const allowed = name.startsWith('step 3') ? /:ERR_PEER_UNTRUSTED\((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_CRL)\)$/ : /^$/;
        expect(codes.filter((c) => PARTITION.test(c) && !allowed.test(c)), `${name}: no handshake or reload refused`).to.deep.equal([]);
      }
      console.log(`      rotation by ${via}: converged in ${Object.entries(timings).map(([k, v]) => `${k} ${v} ms`).join(', ')}; errors: ${report.join('; ')}`);
      const nextCa = readFileSync(join(dir, 'certs-next', 'ca.crt'), 'utf8');
      for (const node of nodes) {
        expect(readFileSync(join(node.live, 'ca.crt'), 'utf8')).to.equal(nextCa);
        expect(new X509Certificate(readFileSync(join(node.live, 'node.crt'))).checkIssued(new X509Certificate(nextCa))).to.equal(true);
      }

      // Revocation of node-c, shipped to the others.
      const [a, b, c] = nodes as [Node, Node, Node];
      const mark = nodes.map((n) => n.errors.length);
      const since = (node: Node): Error[] => node.errors.slice(mark[nodes.indexOf(node)]);
      expect(await run(revoke!, dir)).to.match(/revoked node-c/);
      // node-c holds a live connection to each of the others: it has just delivered to both on it.
      const heard = new Set<string>();
      for (const n of [a, b]) n.transport.on('digest', (sender) => { if (sender.id === 'node-c') heard.add(n.id); });
      for (const n of [a, b]) c.transport.digest({ id: n.id, transport: { host: 'localhost', port: n.transport.port } }, { id: 'node-c', transport: { host: 'localhost', port: c.transport.port } }, []);
      await until(() => heard.size === 2, 10000, 'node-c to deliver to node-a and node-b');
      const shipped = performance.now();
      await step(via, apply!, [a, b]);
      // node-c's live connections to and from a and b are closed at once...
      await until(() => [a, b].every((n) => since(n).some((e) => codeOf(e) === 'ERR_PEER_UNTRUSTED' && (e as { reason?: string }).reason === 'CERT_REVOKED')), 10000, 'a and b to close node-c\'s connections')
        .catch((error: Error) => { throw new Error(`${error.message}; errors since the CRL: ${codesSince(nodes, mark).join(', ')}`); });
      const closedIn = Math.round(performance.now() - shipped);
      // ...a and b keep replicating with each other...
      const after = await converge([a, b], 'after revocation');
      // ...and node-c's new connections are refused in the handshake, both ways.
      const revokedReason = (e: Error): boolean => /CERT_REVOKED|certificate revoked/i.test(`${codeOf(e) ?? ''} ${(e as { reason?: string }).reason ?? ''} ${e.message}`);
      await until(() => [a, b].some((n) => since(n).some((e) => codeOf(e) !== 'ERR_PEER_UNTRUSTED' && revokedReason(e))), 10000, 'a new handshake with node-c to be refused (revoked)');
      await until(() => since(c).some((e) => codeOf(e) === 'ERR_TLS_REFUSED'), 10000, 'node-c to see its sends refused');
      c.gossip.update('mark', 'node-c after revocation');
      await converge([a, b], 'after revocation, again');
      expect(c.gossip.storage.get('node-a')?.data.mark?.[0], 'node-c learns nothing new').to.not.match(/after revocation/);
      expect([a, b].map((n) => n.gossip.storage.get('node-c')?.data.mark?.[0]), 'nothing new from node-c').to.not.include('node-c after revocation');
      console.log(`      revocation by ${via}: node-c's connections closed ${closedIn} ms after the CRL was shipped; node-a and node-b converged in ${after} ms; errors: ${codesSince(nodes, mark).join(', ')}`);
    });
  }
});
