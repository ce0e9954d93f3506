/**
 * The benchmark is not a test of speed (no wall-clock threshold belongs in a
 * unit test on a shared machine). This runs `npm run bench -- --smoke`, which
 * runs every case once until it has delivered a fixed number of messages and
 * every cluster case until it converges, and checks that each one did and
 * printed its figures in the tables docs/performance.md is made of.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { CASES, SIZES } from '../../bench/cases';

function tableRows (text: string, header: string): string[][] {
  const lines = text.split('\n');
  const start = lines.indexOf(header);
  expect(start, `table ${header}`).to.be.above(-1);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('| ')) break;
    rows.push(line.split('|').slice(1, -1).map((cell) => cell.trim()));
  }
  return rows;
}

describe('bench (npm run bench -- --smoke)', () => {
  it('runs every throughput case and every cluster case, and prints their tables', async function () {
    // Generous: a case that works delivers its messages in well under a second; the
    // limit only bounds a broken one. Nothing below depends on how fast it went.
    this.timeout(120000);
    const script = join(__dirname, '..', '..', 'bench', 'run.js');
    const { stdout } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(process.execPath, [script, '--smoke'], { timeout: 115000 }, (error, out, err) => error ? reject(new Error(`${String(error)}\n${err}`)) : resolve({ stdout: out, stderr: err }));
    });

    const cases = tableRows(stdout, '| case | message | msgs/s median (min-max) | p50 ms | p99 ms | CPU µs/msg | receiver peak RSS | vs 0.1.6 |');
    expect(cases.map((row) => `${row[0]} / ${row[1]}`)).to.deep.equal(SIZES.flatMap((size) => CASES.map((spec) => `${spec.name} / ${size}`)));
    for (const row of cases) {
      // The run ended because the receiver counted its messages: a rate above zero, a ratio.
      expect(Number(row[2]!.split(' ')[0]!.replace(/,/g, '')), row.join(' | ')).to.be.above(0);
      expect(row[7], row.join(' | ')).to.match(/^[0-9.,]+x$/);
    }
    const targets = tableRows(stdout, '| target (1 KB digest, median of per-round ratios) | ratio | goal | met |').map((row) => row[0]);
    expect(targets).to.include.members(['per-message plain vs 0.1.6', 'keepAlive TLS vs bare persistent TLS socket', 'per-message plain vs bare connect/end floor']);

    const clusters = tableRows(stdout, '| peers | mode | converged in | CPU | connections opened / peer | TLS handshakes full / resumed per peer | errors |');
    expect(clusters).to.have.length(6);
    for (const row of clusters) {
      expect(row[2], row.join(' | ')).to.match(/^[0-9.]+ s$/);
      expect(Number(row[4]), row.join(' | ')).to.be.above(0);
      if (!row[1]!.startsWith('plain')) expect(row[5], row.join(' | ')).to.match(/^[0-9.]+ \/ [0-9.]+$/);
    }
  });
});
