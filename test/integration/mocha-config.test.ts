/**
 * How `mocha` runs with the repository's .mocharc.json: a file given on the
 * command line runs alone, and the 30-second soak (a global fixture,
 * test/support/soak.fixture.ts) starts only in a run that judges it, which
 * `npm test` is (its spec lists the unit, integration and system tiers).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Mocha = require('mocha');
import { SOAK_TITLE, runJudgesSoak } from '../support/soak.fixture';

const root = join(__dirname, '..', '..', '..');
const PROBE = 'GOSSIPMONGER_MOCHA_CONFIG_PROBE';

/** Runs mocha from the package root with its config and the JSON reporter; resolves with the report and stderr. */
function mocha (args: string[]): Promise<{ stats: { tests: number; passes: number }; files: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    // PROBE marks the child: should the config regress to running every file, the child must not spawn again.
    execFile(process.execPath, [join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--reporter', 'json', ...args], { cwd: root, timeout: 60000, env: { ...process.env, [PROBE]: '1' } }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${error.message}\n${stdout}\n${stderr}`));
      const report = JSON.parse(stdout) as { stats: { tests: number; passes: number }; tests: Array<{ file: string }> };
      resolve({ stats: report.stats, files: [...new Set(report.tests.map((t) => t.file))], stderr });
    });
  });
}

describe('mocha configuration', () => {
  // In a child run by these tests, the two that spawn mocha are not defined (no recursion).
  const spawning = process.env[PROBE] === undefined ? it : (): void => {};

  spawning('runs just the file given on the command line, and starts no soak', async function () {
    this.timeout(60000);
    const { stats, files, stderr } = await mocha(['dist/test/unit/fifo.test.js']);
    expect(files).to.deep.equal([join(root, 'dist', 'test', 'unit', 'fifo.test.js')]);
    expect(stats.tests).to.be.above(0);
    expect(stats.passes).to.equal(stats.tests);
    expect(stderr).to.not.include('soak: started');
  });

  spawning('starts no soak when --grep leaves out the soak test of a loaded soak file', async function () {
    this.timeout(60000);
    const { stats, stderr } = await mocha(['dist/test/system/soak.test.js', '--grep', 'fits the slope of a line']);
    expect(stats.tests).to.equal(1);
    expect(stderr).to.not.include('soak: started');
  });

  it('judges the soak in a run that loaded its test and, under --grep, selects it', () => {
    const runner = (titles: string[], grep?: RegExp, invert = false): Mocha.Runner => {
      const rootSuite = new Mocha.Suite('', new Mocha.Context());
      const soak = Mocha.Suite.create(rootSuite, 'soak');
      for (const title of titles) soak.addTest(new Mocha.Test(title, () => {}));
      const run = new Mocha.Runner(rootSuite, { delay: false });
      if (grep !== undefined) run.grep(grep, invert);
      return run;
    };
    expect(runJudgesSoak(runner(['fits the slope', SOAK_TITLE]))).to.equal(true);
    expect(runJudgesSoak(runner(['fits the slope', SOAK_TITLE], /keeps RSS/))).to.equal(true);
    expect(runJudgesSoak(runner(['fits the slope', SOAK_TITLE], /fits the slope/))).to.equal(false);
    expect(runJudgesSoak(runner(['fits the slope', SOAK_TITLE], /keeps RSS/, true))).to.equal(false);
    expect(runJudgesSoak(runner(['fits the slope']))).to.equal(false);
  });

  it('npm test runs every tier, and every test file sits in one', () => {
    const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.test).to.equal("c8 mocha 'dist/test/{unit,integration,system}/**/*.test.js'");
    const files = readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.ts'));
    expect(files.length).to.be.above(30);
    expect(files.filter((f) => !/^(unit|integration|system)\//.test(f))).to.deep.equal([]);
  });
});
