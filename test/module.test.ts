/**
 * The package as users load it: from outside, by name, through the exports
 * map; CommonJS and ESM; and its typings.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

function run (cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd, timeout: 20000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

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
      import TcpTransport, * as ns from 'gossipmonger-tls-transport';
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)('gossipmonger-tls-transport');
      const t = new ns.TcpTransport({ port: 0 });
      const missing = Object.keys(cjs).filter((k) => !(k in ns));
      console.log(JSON.stringify({ same: TcpTransport === cjs && ns.TcpTransport === cjs, port: t.port, missing }));`]);
    expect(JSON.parse(out)).to.deep.equal({ same: true, port: 0, missing: [] });
  });

  it('ships typings that accept the documented usage and reject a wrong option type', async function () {
    this.timeout(60000);
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    // The usage file resolves the package by name from its own directory.
    const out = await run(join(root, 'test', 'types'), [tsc, '-p', 'tsconfig.json']).catch((error: Error) => error.message);
    expect(out).to.equal('');
  });
});
