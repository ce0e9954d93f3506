/**
 * Runs every path of secret-paths.ts, for a parent that reads this
 * process's NODE_DEBUG output; prints only the key markers and the number
 * of paths, as its last line.
 */
import { runPaths } from './secret-paths';

runPaths().then(({ results, keys }) => {
  process.stdout.write(`${JSON.stringify({ keys, paths: results.size })}\n`);
}, (error: unknown) => {
  process.stderr.write(`failed: ${(error as Error).name}\n`);
  process.exitCode = 1;
});
