/**
 * The README stays true: every error code in src/ is listed with a sentence,
 * and every option of the options types is in the option table with the
 * default the code actually uses.
 */
import { expect } from 'chai';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { channels } from '../../src/diagnostics';
import { ERROR_CODES, WARNING_CODES } from '../../src/errors';
import { resolveOptions, type KeepAliveOptions, type OutboundOptions, type PlaintextMigration, type TlsOptions, type TransportOptions } from '../../src/options';
import { pem } from '../support/helpers';

const root = join(__dirname, '..', '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const security = readFileSync(join(root, 'SECURITY.md'), 'utf8');

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
      expect(listed.sort()).to.deep.equal(Object.keys(ERROR_CODES).sort());
    });
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
      frameTimeout: base.frameTimeout,
      maxConnectionsPerSource: base.maxConnectionsPerSource,
      connectionsPerSecondPerSource: base.connectionsPerSecondPerSource,
      maxPeers: base.maxPeers,
      cluster: base.cluster,
      allowFrom: base.allowFrom,
      outbound: undefined
    };
    const outboundKeys: Record<keyof OutboundOptions, unknown> = base.outbound;
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
      ...Object.entries(outboundKeys).map(([k, v]): [string, unknown] => [`outbound.${k}`, v])
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
        ['keepAlive.maxQueuedBytes', '8 MiB'], ['keepAlive.idleTimeout', '10 s'], ['tls.minVersion', 'TLSv1.2'], ['tls.sessionCache', '256']] as const) {
        const row = rowsOf(security).get(name);
        expect(row, name).to.not.equal(undefined);
        expect(row![0], name).to.include(value);
      }
    });
  });

  describe('test pointers', () => {
    // `[test/FILE: "words"]`: a README or SECURITY.md claim names the test that shows it.
    const pointers = [...`${readme}\n${security}`.matchAll(/\[test\/([\w./-]+\.ts): "([^"]+)"\]/g)];

    it('name a test file that exists and a test title (or describe) in it', () => {
      expect(pointers.length).to.be.above(20);
      for (const [, file, words] of pointers) {
        const source = readFileSync(join(root, 'test', file!), 'utf8');
        const title = words!.replace(/\s+/g, ' ');
        expect(source.includes(title), `test/${file} has no test titled with "${title}"`).to.equal(true);
      }
    });

    it('back every row of the migration table of differences', () => {
      const section = readme.slice(readme.indexOf('**Every difference in behaviour**'), readme.indexOf('### Migrating a running cluster'));
      const rows = section.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| ---') && !line.startsWith('| 0.1.6 |'));
      expect(rows.length).to.be.above(15);
      for (const row of rows) expect(row, row).to.match(/\[test\/[\w./-]+\.ts: "[^"]+"\]/);
    });
  });

  describe('diagnostics channels', () => {
    it('README lists exactly the channels src/diagnostics.ts publishes', () => {
      const documented = [...readme.matchAll(/^\| `(gossipmonger-tls-transport:[a-z:]+)` \|/gm)].map((m) => m[1]);
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
    it('lists every folder of src/ and test/ that exists, and only those', () => {
      const section = readme.slice(readme.indexOf('## Layout'), readme.indexOf('## Performance'));
      const listed = new Set([...section.matchAll(/`((?:src|test)\/[a-z-]+)\/`/g)].map((m) => m[1]!));
      const present = new Set<string>();
      for (const top of ['src', 'test']) {
        for (const entry of readdirSync(join(root, top), { withFileTypes: true })) {
          if (entry.isDirectory()) present.add(`${top}/${entry.name}`);
        }
      }
      expect([...listed].sort()).to.deep.equal([...present].sort());
    });
  });
});
