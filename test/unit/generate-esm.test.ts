/**
 * The ESM entry and the typings of the error exports are generated at build
 * (scripts/generate-esm.ts) from the CommonJS module, so that a new error
 * code is written in src/errors.ts and README only. These tests check the
 * generator's rules; test/integration/module.test.ts checks the result from
 * outside the package.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as errors from '../../src/errors';
import { CJS_DIR, ESM_DIR, completeDeclaration, declaredNames, esmModule, esmTypings, runtimeNames } from '../../scripts/generate-esm';

describe('generated ESM entry (scripts/generate-esm.ts)', () => {
  const indexDts = readFileSync(join(CJS_DIR, 'index.d.ts'), 'utf8');
  const errorsDts = readFileSync(join(CJS_DIR, 'errors.d.ts'), 'utf8');
  const cjs = require(join(CJS_DIR, 'index.js')) as Record<string, unknown>;

  it('the CommonJS entry exports every error class of src/errors.ts by its name, unlisted', () => {
    const classes = Object.entries(errors).filter(([, value]) => typeof value === 'function' && (value === errors.TransportError || value.prototype instanceof errors.TransportError));
    expect(classes.length).to.equal(Object.keys(errors.ERROR_CODES).length + 1);
    for (const [name, value] of classes) expect(cjs[name], name).to.equal(value);
    // Helpers of errors.ts are not part of the API.
    expect(cjs).to.not.have.property('withRemote');
    expect(cjs).to.not.have.property('withFrames');
  });

  it('re-exports each runtime export by name, one added to the module included', () => {
    const source = esmModule(runtimeNames({ TcpTransport: 1, ERROR_CODES: 2, BrandNewError: 3 }));
    expect(source).to.match(/^ {2}ERROR_CODES,$/m);
    expect(source).to.match(/^ {2}BrandNewError$/m);
    expect(source).to.match(/^export \{ Named as TcpTransport \};$/m);
    expect(source).to.not.match(/^ {2}TcpTransport,?$/m);
  });

  it('refuses an export it cannot write as a named export', () => {
    expect(() => runtimeNames({ default: 1 })).to.throw(/"default"/);
    expect(() => runtimeNames({ 'not-a-name': 1 })).to.throw(/"not-a-name"/);
  });

  it('types a runtime export that only errors.d.ts declares, and fails the build for one nothing declares', () => {
    const dts = 'declare class TcpTransport {\n}\ndeclare namespace TcpTransport {\n    const ERROR_CODES: {};\n    type ErrorCode = string;\n}\nexport = TcpTransport;\n';
    const errorClasses = 'export declare class TransportError extends Error {\n}\nexport declare class BrandNewError extends TransportError {\n}\n';
    const completed = completeDeclaration(dts, errorClasses, ['ERROR_CODES', 'BrandNewError']);
    expect(completed).to.include('    export import BrandNewError = generatedErrors.BrandNewError;');
    expect(declaredNames(completed).sort()).to.deep.equal(['BrandNewError', 'ERROR_CODES', 'ErrorCode']);
    // Running it again replaces its own block rather than adding a second.
    expect(completeDeclaration(completed, errorClasses, ['ERROR_CODES', 'BrandNewError'])).to.equal(completed);
    expect(() => completeDeclaration(dts, errorClasses, ['ERROR_CODES', 'Untyped'])).to.throw(/without a declaration: Untyped/);
  });

  it('the built files are exactly what the generator makes from the built module now (not stale, not edited)', () => {
    const hint = 'rebuild with npm run build (tsc alone rewrites dist/src/index.d.ts without the error typings)';
    const runtime = runtimeNames(cjs);
    expect(completeDeclaration(indexDts, errorsDts, runtime) === indexDts, hint).to.equal(true);
    expect(readFileSync(join(ESM_DIR, 'index.mjs'), 'utf8') === esmModule(runtime), hint).to.equal(true);
    expect(readFileSync(join(ESM_DIR, 'index.d.mts'), 'utf8') === esmTypings(declaredNames(indexDts)), hint).to.equal(true);
    // Every runtime export is typed in the CommonJS declaration, and so in the ESM one.
    expect(runtime.filter((name) => !declaredNames(indexDts).includes(name))).to.deep.equal([]);
  });
});
