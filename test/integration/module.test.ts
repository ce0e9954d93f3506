/**
 * The package as users load it: from outside, by name, through the exports
 * map; CommonJS and ESM; and its typings.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..', '..');

function run (cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd, timeout: 20000 }, (error, stdout, stderr) => {
      // tsc reports on stdout.
      if (error) reject(new Error(`${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/** Runs a command from the package root; resolves with stdout, rejects with stdout and stderr. */
function runTool (file: string, args: string[]): Promise<string> {
  return runToolIn(root, file, args);
}

/** Runs a command in `cwd`; resolves with stdout and stderr, rejects with both. */
function runToolIn (cwd: string, file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: 50000, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${error.message}\n${stdout}\n${stderr}`));
      else resolve(cwd === root ? stdout : `${stdout}\n${stderr}`);
    });
  });
}

interface Check { ok: boolean; out: string }

describe('package', () => {
  let app: string;
  before(() => {
    // An application next to the package, as npm would lay it out.
    app = mkdtempSync(join(tmpdir(), 'gm-app-'));
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(root, join(app, 'node_modules', 'gossipmonger-tls-transport'), 'dir');
  });
  after(() => rmSync(app, { recursive: true, force: true }));

  it('require() returns the constructor itself, with the named exports on it, as 0.1.6', async () => {
    const out = await run(app, ['-e', `
      const T = require('gossipmonger-tls-transport');
      const t = new T();
      console.log(JSON.stringify({
        fn: typeof T, same: T.TcpTransport === T, host: t.host, port: t.port,
        emitter: typeof t.on, errors: typeof T.InvalidMessageError, schema: T.messageSchema.type,
        err: new T.FrameTooLargeError(1) instanceof T.TransportError
      }));`]);
    expect(JSON.parse(out)).to.deep.equal({ fn: 'function', same: true, host: 'localhost', port: 9742, emitter: 'function', errors: 'function', schema: 'object', err: true });
  });

  it('import gives the constructor as default export and every named export', async () => {
    const out = await run(app, ['--input-type=module', '-e', `
      import TcpTransport, { TcpTransport as Named, FrameTooLargeError } from 'gossipmonger-tls-transport';
      import * as ns from 'gossipmonger-tls-transport';
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)('gossipmonger-tls-transport');
      const t = new Named({ port: 0 });
      // Every own enumerable property of the CommonJS module, the same object under the same name.
      const missing = Object.keys(cjs).filter((k) => ns[k] !== cjs[k]);
      const extra = Object.keys(ns).filter((k) => k !== 'default' && !(k in cjs));
      const err = new FrameTooLargeError(1);
      console.log(JSON.stringify({ same: TcpTransport === cjs && Named === cjs, port: t.port, missing, extra, code: err.code, base: err instanceof cjs.TransportError }));`]);
    expect(JSON.parse(out)).to.deep.equal({ same: true, port: 0, missing: [], extra: [], code: 'ERR_FRAME_TOO_LARGE', base: true });
  });

  it('ships typings that accept the documented usage and reject a wrong option type', async function () {
    this.timeout(60000);
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    // The consumer files in an application's folder, the package and
    // gossipmonger in its node_modules as npm puts them: the gossipmonger
    // declaration is opted into by name, as the README says. Each wrong usage
    // is marked @ts-expect-error, so it must fail to compile for this to pass.
    const consumer = mkdtempSync(join(tmpdir(), 'gm-types-'));
    try {
      mkdirSync(join(consumer, 'node_modules', '@types'), { recursive: true });
      symlinkSync(root, join(consumer, 'node_modules', 'gossipmonger-tls-transport'), 'dir');
      symlinkSync(join(root, 'node_modules', 'gossipmonger'), join(consumer, 'node_modules', 'gossipmonger'), 'dir');
      symlinkSync(join(root, 'node_modules', '@types', 'node'), join(consumer, 'node_modules', '@types', 'node'), 'dir');
      for (const file of readdirSync(join(root, 'test', 'types'))) copyFileSync(join(root, 'test', 'types', file), join(consumer, file));
      // The README's TypeScript, as written, compiled with them.
      const readme = readFileSync(join(root, 'README.md'), 'utf8');
      const typescript = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
      expect(typescript, 'the README shows typed usage').to.have.length.above(0);
      typescript.forEach((code, i) => writeFileSync(join(consumer, `readme-${i}.ts`), code));
      const config = JSON.parse(readFileSync(join(consumer, 'tsconfig.json'), 'utf8')) as { files: string[] };
      config.files.push(...typescript.map((_, i) => `readme-${i}.ts`));
      writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(config));
      const out = await run(consumer, [tsc, '-p', 'tsconfig.json']).catch((error: Error) => error.message);
      expect(out).to.equal('');
    } finally {
      rmSync(consumer, { recursive: true, force: true });
    }
  });

  it('types the ESM entry with every name of the CommonJS entry (dist/esm/index.d.mts, generated at build)', async function () {
    this.timeout(60000);
    // Every runtime export, and every type src/index.ts declares, imported by
    // name from ESM and compared with the CommonJS declaration of the same
    // name: a name the generated typings lack (or type differently) fails to
    // compile. The lists come from the module and the source, not from the
    // generator, so a generator that drops a name cannot pass.
    const runtime = Object.keys(require(join(root, 'dist', 'src', 'index.js')) as object).filter((n) => n !== 'TcpTransport');
    const types = [...readFileSync(join(root, 'src', 'index.ts'), 'utf8').matchAll(/^ {2}export type (\w+)/gm)].map((m) => m[1]!).filter((n) => n !== 'TcpTransport');
    expect(runtime.length).to.be.above(20);
    expect(types.length).to.be.above(10);
    const pkg = 'gossipmonger-tls-transport';
    const cjs = `import('${pkg}', { with: { 'resolution-mode': 'require' } })`;
    const lines = [
      `import * as esm from '${pkg}';`,
      'type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;',
      ...runtime.map((n) => `export const ${n}: Same<typeof esm.${n}, typeof ${cjs}.${n}> = true;`),
      ...types.map((n) => `export const type_${n}: Same<esm.${n}, ${cjs}.${n}> = true;`)
    ];
    writeFileSync(join(app, 'every-name.mts'), lines.join('\n') + '\n');
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] },
      files: ['every-name.mts']
    }));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const out = await run(app, [tsc, '-p', 'tsconfig.json']).catch((error: Error) => error.message);
    expect(out).to.equal('');
  });

  describe('the packed tarball', () => {
    let packDir: string;
    let tarball: string;
    let checks: Promise<{ attw: Check; publint: Check }>;
    before(async function () {
      this.timeout(60000);
      packDir = mkdtempSync(join(tmpdir(), 'gm-pack-'));
      // dist/ is already built by pretest; packing must not rebuild it.
      const out = await runTool('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', packDir]);
      tarball = join(packDir, out.trim().split('\n').pop()!);
      const bin = (name: string): string => join(root, 'node_modules', '.bin', name);
      const check = (file: string, args: string[]): Promise<Check> => runTool(file, args).then((text) => ({ ok: true, out: text }), (error: Error) => ({ ok: false, out: error.message }));
      // Both linters run at once; the tests below wait for them. node16 is the
      // resolution that matters for Node >= 20: CommonJS require and ESM import.
      checks = Promise.all([check(bin('attw'), [tarball, '--profile', 'node16', '--format', 'ascii']), check(bin('publint'), [tarball, '--strict'])])
        .then(([attw, publint]) => ({ attw, publint }));
    });
    after(async () => {
      // The linters may still be reading the tarball if a test failed early.
      await checks?.catch(() => {});
      if (packDir !== undefined) rmSync(packDir, { recursive: true, force: true });
    });

    it('passes arethetypeswrong (types resolve as ESM for import and as CommonJS for require) and publint', async function () {
      this.timeout(60000);
      const { attw, publint } = await checks;
      expect(attw.ok, attw.out).to.equal(true);
      expect(attw.out).to.not.match(/Masquerading|FalseCJS|FalseESM|🎭/);
      expect(publint.ok, publint.out).to.equal(true);
      expect(publint.out).to.not.match(/Warnings|Errors|Suggestions/);
    });

    it('ships the certificate command, the ESM typings, the changelog, and no test certificates', async () => {
      const list = await runTool('tar', ['-tzf', tarball]);
      for (const file of ['package/dist/scripts/generate-certs.js', 'package/dist/scripts/pki.js', 'package/gossipmonger.d.ts', 'package/dist/esm/index.d.mts', 'package/dist/esm/index.mjs', 'package/CHANGELOG.md', 'package/SECURITY.md', 'package/docs/operations.md', 'package/dist/src/index.d.ts']) {
        expect(list, file).to.include(file);
      }
      expect(list).to.not.match(/\.key$|certs\/|\.test\.js/m);
    });

    it('installs from the tarball with dist/ built and runs no script (prepare builds git installs only)', async function () {
      this.timeout(60000);
      const list = await runTool('tar', ['-tzf', tarball]);
      expect(list).to.include('package/dist/src/index.js');
      const manifest = JSON.parse(await runTool('tar', ['-xzOf', tarball, 'package/package.json'])) as { scripts: Record<string, string> };
      // npm runs prepare for git and folder installs only; nothing may run at a registry or tarball install.
      expect(Object.keys(manifest.scripts).filter((name) => /^(pre|post)?install$/.test(name))).to.deep.equal([]);
      const consumer = mkdtempSync(join(tmpdir(), 'gm-install-'));
      try {
        writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
        // Offline: the one dependency (ajv) is in npm's cache since this repository's own install.
        const out = await runToolIn(consumer, 'npm', ['install', tarball, '--offline', '--foreground-scripts', '--no-audit', '--no-fund']);
        expect(out).to.not.match(/^> gossipmonger-tls-transport@/m);
        expect(await run(consumer, ['-e', 'console.log(typeof require("gossipmonger-tls-transport"))'])).to.equal('function');
      } finally {
        rmSync(consumer, { recursive: true, force: true });
      }
    });
  });
});
