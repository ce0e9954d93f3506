/**
 * The benchmark is not a test of speed (no wall-clock threshold belongs in a
 * unit test on a shared machine); this only checks that `--quick` runs and
 * prints the table the README's Performance section is made from.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

describe('bench (npm run bench -- --quick)', () => {
  it('runs every case and prints the markdown tables', async function () {
    this.timeout(60000);
    const script = join(__dirname, '..', 'bench', 'run.js');
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(process.execPath, [script, '--quick'], { timeout: 55000 }, (error, out, err) => error ? reject(error) : resolve({ stdout: out, stderr: err }));
    });
    expect(stderr).to.match(/\[1\/20\]/);
    const rows = stdout.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| ---'));
    expect(rows[0]).to.equal('| case | message | msgs/s median (min-max) | p50 ms | p99 ms | receiver peak RSS | vs 0.1.6 |');
    const cases = rows.slice(1, 21);
    expect(cases).to.have.length(20);
    for (const row of cases) {
      // Every case delivered something: a rate above zero and a ratio.
      const cells = row.split('|').map((c) => c.trim());
      expect(Number(cells[3]!.split(' ')[0]!.replace(/,/g, '')), row).to.be.above(0);
      expect(cells[7], row).to.match(/^[0-9.]+x$/);
    }
    expect(stdout).to.include('| keepAlive TLS vs raw TLS socket |');
  });
});
