/**
 * Mocha global fixture (.mocharc.json `require`): starts the 30-second soak
 * (scripts/soak.ts) in its own process when the run starts, so that it runs
 * alongside the other tests instead of adding 30 s to the suite;
 * test/system/soak.test.ts awaits and judges its result. Its bounds are on slopes,
 * not on time, so the load of the suite running beside it does not decide it.
 *
 * It starts only when the run will judge it: when test/system/soak.test.ts is
 * among the files mocha loaded and --grep (if any) selects its test. Mocha
 * loads every file before global setup, and calls the fixture with the run's
 * Runner as `this`, which holds the root suite and the grep.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type Mocha from 'mocha';

export const SOAK_SECONDS = 30;

/** The title of the test that judges the soak (test/system/soak.test.ts); the fixture looks for it. */
export const SOAK_TITLE = `keeps RSS, heap, descriptors and handles flat for ${SOAK_SECONDS} s of churn with hostile connections (started with the suite)`;

export interface SoakRun { code: number | null; stdout: string; stderr: string }

let child: ChildProcess | undefined;
let run: Promise<SoakRun> | undefined;

/** Starts the soak once; later calls return the same run. */
export function startSoak (): Promise<SoakRun> {
  if (run) return run;
  const script = join(__dirname, '..', '..', 'scripts', 'soak.js');
  const started = spawn(process.execPath, ['--expose-gc', script, '--duration', String(SOAK_SECONDS), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child = started;
  run = new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    started.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    started.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    started.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return run;
}

/** Whether this run includes the soak's test and --grep selects it. */
export function runJudgesSoak (runner: Mocha.Runner): boolean {
  let test: Mocha.Test | undefined;
  runner.suite.eachTest((t) => { if (t.title === SOAK_TITLE) test = t; });
  if (test === undefined) return false;
  // grepTotal counts the tests a suite holds that --grep (with --invert) selects: asked of a suite of this one test.
  const single = { eachTest: (fn: (t: Mocha.Test) => void) => { fn(test!); } } as unknown as Mocha.Suite;
  return runner.grepTotal(single) > 0;
}

export function mochaGlobalSetup (this: Mocha.Runner | undefined): void {
  // A mocha that stopped passing the runner: start the soak as before rather than never.
  if (this?.suite === undefined || typeof this.grepTotal !== 'function' || runJudgesSoak(this)) {
    // One line on stderr, so that a run says why it holds a second process.
    process.stderr.write(`soak: started for ${SOAK_SECONDS} s beside the suite (judged by test/system/soak.test.ts)\n`);
    void startSoak();
  }
}

/** A run that did not include test/system/soak.test.ts leaves nothing behind. */
export function mochaGlobalTeardown (): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
