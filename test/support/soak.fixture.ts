/**
 * Mocha global fixture (.mocharc.json `require`): starts the 30-second soak
 * (scripts/soak.ts) in its own process when the suite starts, so that it runs
 * alongside the other tests instead of adding 30 s to the suite;
 * test/system/soak.test.ts awaits and judges its result. Its bounds are on slopes,
 * not on time, so the load of the suite running beside it does not decide it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const SOAK_SECONDS = 30;

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

export function mochaGlobalSetup (): void {
  void startSoak();
}

/** A run that did not include test/system/soak.test.ts leaves nothing behind. */
export function mochaGlobalTeardown (): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
