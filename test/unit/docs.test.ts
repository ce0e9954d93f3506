/**
 * The documents stay true: every error code in src/ (emitted and thrown) is
 * listed in the README with a sentence, every option of the options types is
 * in its option table with the default the code actually uses, the channels
 * and the layout in docs/reference.md match the source, every `[test/...]`
 * pointer names a test, every link between the documents resolves, and the
 * Node.js version agrees everywhere.
 */
import { expect } from 'chai';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { channels } from '../../src/diagnostics';
import { ERROR_CODES, THROWN_CODES, WARNING_CODES } from '../../src/errors';
import { resolveOptions, type KeepAliveOptions, type MembershipOptions, type OutboundOptions, type PlaintextMigration, type TlsOptions, type TransportOptions } from '../../src/options';
import { pem } from '../support/helpers';

const root = join(__dirname, '..', '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const security = readFileSync(join(root, 'SECURITY.md'), 'utf8');
const reference = readFileSync(join(root, 'docs', 'reference.md'), 'utf8');
/** Every document a user reads, by path from the root. */
const documents = new Map<string, string>([['README.md', readme], ['SECURITY.md', security],
  ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f): [string, string] => [`docs/${f}`, readFileSync(join(root, 'docs', f), 'utf8')])]);

/** The text of the `## title` section of `text`, up to the next heading of its level or above. */
function section (text: string, title: string): string {
  const start = text.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`no section "## ${title}"`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** GitHub's anchor for a heading: lower case, punctuation but '-' and '_' dropped, spaces as '-'. */
function slug (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** A version range of the forms package.json files use (`>=20.19`, `^20.19.0 || >=22.12.0`) holds for `version`. */
function satisfies (version: string, range: string): boolean {
  const parse = (v: string): number[] => v.split('.').map(Number).concat([0, 0, 0]).slice(0, 3);
  const compare = (a: number[], b: number[]): number => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
  const v = parse(version);
  return range.split('||').some((part) => {
    const m = /^\s*(>=|\^)\s*(\d+(?:\.\d+){0,2})\s*$/.exec(part);
    if (m === null) throw new Error(`range form not handled here: ${part}`);
    const floor = parse(m[2]!);
    return compare(v, floor) >= 0 && (m[1] === '>=' || v[0] === floor[0]);
  });
}

/** README table rows whose first cell is `name`, as arrays of cells. */
function rowsOf (text: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^\| `([^`]+)` \|(.*)\|$/.exec(line);
    if (match) rows.set(match[1]!, match[2]!.split(' | ').map((c) => c.trim()));
  }
  return rows;
}

/** How the README writes a default: `'text'`, `123`, `true`, or none. */
function render (value: unknown): string {
  if (value === undefined) return 'none';
  // An object option on by default with its own defaults (membership): `{}`.
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return '`{}`';
  if (typeof value === 'string') return `\`'${value}'\``;
  return `\`${String(value)}\``;
}

describe('docs', () => {
  describe('README errors table', () => {
    const rows = rowsOf(readme);
    for (const code of Object.keys(ERROR_CODES)) {
      it(`lists ${code} with a class and a sentence`, () => {
        const row = rows.get(code);
        expect(row, code).to.not.equal(undefined);
        expect(row![0]).to.match(/^`[A-Za-z]+Error`$/);
        expect(row![1]!.length).to.be.above(20);
      });
    }

    it('lists no code that src/ does not have', () => {
      const listed = [...rows.keys()].filter((k) => /^ERR_[A-Z_]+$/.test(k));
      expect(listed.sort()).to.deep.equal([...Object.keys(ERROR_CODES), ...Object.keys(THROWN_CODES)].sort());
    });

    for (const code of Object.keys(THROWN_CODES)) {
      it(`lists ${code}, thrown, with what it is thrown as and when`, () => {
        const row = rows.get(code);
        expect(row, code).to.not.equal(undefined);
        expect(row![0]).to.match(/`(TypeError|RangeError|Error)`/);
        expect(row![1]!.length).to.be.above(20);
      });
    }
  });

  describe('README warnings table', () => {
    it('lists exactly the warning codes of src/errors.ts, each with a sentence', () => {
      const rows = rowsOf(readme);
      const listed = [...rows.keys()].filter((k) => /^WARN_[A-Z_]+$/.test(k));
      expect(listed.sort()).to.deep.equal(Object.keys(WARNING_CODES).sort());
      for (const code of listed) expect(rows.get(code)![0]!.length, code).to.be.above(20);
    });
  });

  describe('README option table', () => {
    const rows = rowsOf(readme);
    const tls = { ...pem('peer-1') };
    const base = resolveOptions({});
    const withTls = resolveOptions({ tls }).tls!;
    const keepAlive = resolveOptions({ keepAlive: true }).keepAlive!;
    // Record<keyof ...> makes the compiler fail when an option is added to a
    // type but not here, so the table cannot fall behind the types.
    const top: Record<keyof TransportOptions, unknown> = {
      host: base.host,
      port: base.port,
      tls: base.tls,
      maxFrameSize: base.maxFrameSize,
      keepAlive: false,
      connectTimeout: base.connectTimeout,
      handshakeTimeout: base.handshakeTimeout,
      idleTimeout: base.idleTimeout,
      maxConnections: base.maxConnections,
      maxHandshakes: base.maxHandshakes,
      frameTimeout: base.frameTimeout,
      maxConnectionsPerSource: base.maxConnectionsPerSource,
      connectionsPerSecondPerSource: base.connectionsPerSecondPerSource,
      maxPeers: base.maxPeers,
      membership: {},
      cluster: base.cluster,
      allowFrom: base.allowFrom,
      outbound: undefined
    };
    const outboundKeys: Record<keyof OutboundOptions, unknown> = base.outbound;
    const { enforce: _enforce, ...membershipDefaults } = base.membership;
    const membershipKeys: Record<keyof MembershipOptions, unknown> = membershipDefaults;
    type OwnTls = Exclude<keyof TlsOptions, Exclude<keyof import('node:tls').SecureContextOptions, 'minVersion'>>;
    const ownTls: Record<OwnTls, unknown> = {
      requestCert: withTls.requestCert,
      rejectUnauthorized: withTls.rejectUnauthorized,
      authorize: withTls.authorize,
      minVersion: withTls.context.minVersion,
      servername: withTls.servername,
      checkServerIdentity: withTls.checkServerIdentity,
      sessionCache: withTls.sessionCache,
      plaintext: undefined
    };
    const keepAliveKeys: Record<keyof KeepAliveOptions, unknown> = keepAlive;
    const plaintext: Record<keyof PlaintextMigration, unknown> = withTls.plaintext;
    const expected: Array<[string, unknown]> = [
      ...Object.entries(top),
      ...Object.entries(ownTls).map(([k, v]): [string, unknown] => [`tls.${k}`, v]),
      ...Object.entries(keepAliveKeys).map(([k, v]): [string, unknown] => [`keepAlive.${k}`, v]),
      ...Object.entries(plaintext).map(([k, v]): [string, unknown] => [`tls.plaintext.${k}`, v]),
      ...Object.entries(outboundKeys).map(([k, v]): [string, unknown] => [`outbound.${k}`, v]),
      ...Object.entries(membershipKeys).map(([k, v]): [string, unknown] => [`membership.${k}`, v])
    ];

    for (const [name, value] of expected) {
      it(`documents ${name} with its default ${render(value)}`, () => {
        const row = rows.get(name);
        expect(row, `README has no option row for ${name}`).to.not.equal(undefined);
        expect(row![1], `${name}: default cell`).to.satisfy((cell: string) => cell === render(value) || cell.startsWith(`${render(value)} (`));
        expect(row![2]!.length, `${name}: meaning`).to.be.above(15);
      });
    }
  });

  describe('SECURITY.md', () => {
    it('lists every limit and timeout with its default', () => {
      const base = resolveOptions({});
      for (const [name, value] of [['maxFrameSize', '1 MiB'], ['maxConnections', String(base.maxConnections)], ['idleTimeout', `${base.idleTimeout / 1000} s`],
        ['handshakeTimeout', `${base.handshakeTimeout / 1000} s`], ['connectTimeout', `${base.connectTimeout / 1000} s`],
        ['frameTimeout', `${base.frameTimeout / 1000} s`], ['maxConnectionsPerSource', String(base.maxConnectionsPerSource)],
        ['connectionsPerSecondPerSource', `${base.connectionsPerSecondPerSource}/s`], ['maxPeers', String(base.maxPeers)],
        ['keepAlive.maxQueuedBytes', '8 MiB'], ['keepAlive.idleTimeout', `${(base.keepAlive ?? resolveOptions({ keepAlive: true }).keepAlive!).idleTimeout / 1000} s`], ['maxHandshakes', String(base.maxHandshakes)], ['outbound.maxHandshakes', String(base.outbound.maxHandshakes)], ['tls.minVersion', 'TLSv1.2'], ['tls.sessionCache', '256'],
        ['membership.pendingPerIntroducer', String(base.membership.pendingPerIntroducer)], ['membership.proofsPerSecond', `${base.membership.proofsPerSecond}/s`],
        ['membership.proofTimeout', `${base.membership.proofTimeout / 1000} s`], ['membership.idsPerSource', String(base.membership.idsPerSource)]] as const) {
        const row = rowsOf(security).get(name);
        expect(row, name).to.not.equal(undefined);
        expect(row![0], name).to.include(value);
      }
    });
  });

  describe('test pointers', () => {
    // `[test/FILE: "words"]`: a claim in a document names the test that shows it.
    const pointers = [...[...documents.values()].join('\n').matchAll(/\[test\/([\w./-]+\.ts): "([^"]+)"\]/g)];

    it('name a test file that exists and a test title (or describe) in it', () => {
      expect(pointers.length).to.be.above(20);
      for (const [, file, words] of pointers) {
        const source = readFileSync(join(root, 'test', file!), 'utf8');
        const title = words!.replace(/\s+/g, ' ');
        expect(source.includes(title), `test/${file} has no test titled with "${title}"`).to.equal(true);
      }
    });

    it('back every row of the migration table of differences', () => {
      const differences = section(reference, 'Migrating from gossipmonger-tcp-transport 0.1.6');
      const rows = differences.slice(differences.indexOf('**Every difference in behaviour**')).split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| ---') && !line.startsWith('| 0.1.6 |'));
      expect(rows.length).to.be.above(15);
      for (const row of rows) expect(row, row).to.match(/\[test\/[\w./-]+\.ts: "[^"]+"\]/);
    });
  });

  describe('diagnostics channels', () => {
    it('docs/reference.md lists exactly the channels src/diagnostics.ts publishes', () => {
      const documented = [...reference.matchAll(/^\| `(gossipmonger-tls-transport:[a-z:]+)` \|/gm)].map((m) => m[1]);
      expect(documented.sort()).to.deep.equal(Object.values(channels).map((c) => c.name as string).sort());
    });
  });

  describe('sources', () => {
    it('point at no document outside the repository', () => {
      const files = ['src', 'scripts', 'test', 'bench'].flatMap((d) => readdirSync(join(root, d), { recursive: true, encoding: 'utf8' }).map((f) => join(root, d, f)))
        .filter((f) => /\.(ts|mts|mjs|js)$/.test(f) && statSync(f).isFile());
      expect(files.length).to.be.above(20);
      for (const file of files) {
        if (file.endsWith('docs.test.ts')) continue;
        expect(readFileSync(file, 'utf8'), file).to.not.match(/DESIGN\.md|STYLE\.md|house style/i);
      }
    });
  });

  describe('layout', () => {
    it('lists every folder of src/ and test/ that exists, and only those (docs/reference.md, "Layout")', () => {
      const listed = new Set([...section(reference, 'Layout').matchAll(/`((?:src|test)\/[a-z-]+)\/`/g)].map((m) => m[1]!));
      const present = new Set<string>();
      for (const top of ['src', 'test']) {
        for (const entry of readdirSync(join(root, top), { withFileTypes: true })) {
          if (entry.isDirectory()) present.add(`${top}/${entry.name}`);
        }
      }
      expect([...listed].sort()).to.deep.equal([...present].sort());
    });
  });

  describe('links', () => {
    it('between the documents, and to files of the repository, resolve (anchors included)', () => {
      const anchors = (text: string): Set<string> => {
        const found = new Set<string>();
        let inside = false;
        for (const line of text.split('\n')) {
          if (line.startsWith('```')) inside = !inside;
          const heading = /^#+ (.*)$/.exec(line);
          if (!inside && heading) found.add(slug(heading[1]!));
        }
        return found;
      };
      let checked = 0;
      const broken: string[] = [];
      for (const [path, text] of documents) {
        for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
          if (/^[a-z]+:/.test(target!)) continue;
          checked++;
          const [file, anchor] = target!.split('#') as [string, string | undefined];
          const resolved = file === '' ? path : join(path, '..', file).replace(/\\/g, '/');
          if (statSync(join(root, resolved), { throwIfNoEntry: false }) === undefined) broken.push(`${path}: ${target} (no ${resolved})`);
          else if (anchor !== undefined && !anchors(documents.get(resolved) ?? '').has(anchor)) broken.push(`${path}: ${target} (no such heading in ${resolved})`);
        }
      }
      expect(broken).to.deep.equal([]);
      expect(checked).to.be.above(20);
    });
  });

  describe('Node.js version', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string }; devDependencies: Record<string, string> };
    const floor = /^>=(\d+\.\d+)$/.exec(pkg.engines.node)?.[1];

    it('engines, the README and the dev tools agree: every dev tool runs on the lowest version engines allows', () => {
      expect(floor, `engines.node is a floor: ${pkg.engines.node}`).to.not.equal(undefined);
      expect(readme).to.include(`Node.js ${floor} or later`);
      for (const name of Object.keys(pkg.devDependencies)) {
        const manifest = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { engines?: { node?: string } };
        const range = manifest.engines?.node;
        if (range !== undefined) expect(satisfies(`${floor!}.0`, range), `${name} needs node ${range}`).to.equal(true);
      }
    });

    it('the suite runs on a version engines allows', () => {
      expect(satisfies(process.versions.node, pkg.engines.node), process.versions.node).to.equal(true);
    });
  });
});
