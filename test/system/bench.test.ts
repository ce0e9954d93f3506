/**
 * The benchmark is not a test of speed (no wall-clock threshold belongs in a
 * unit test on a shared machine). This runs `npm run bench -- --smoke`, which
 * runs every case once until it has delivered a fixed number of messages and
 * every cluster case until it converges, and the parse micro-benchmark and the
 * interleaved per-message case once, and checks that each one did and printed
 * its figures in the tables docs/performance.md is made of.
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
    // CPU per message of each side, and over the floor where the case has one.
    const sides = tableRows(stdout, '| case | message | sender CPU µs/msg | receiver CPU µs/msg | both | floor | over the floor: sender / receiver / both |');
    const withFloor = CASES.filter((spec) => spec.floor !== undefined && spec.alone === undefined).map((spec) => spec.name);
    expect(sides.map((row) => row[0])).to.include.members([...withFloor, 'bare net connect/end', 'bare tls connect/end (full)', 'bare tls connect/end (resumed)', 'bare tls socket']);
    for (const row of sides) {
      for (const cell of row.slice(2, 5)) expect(Number(cell.replace(/,/g, '')), row.join(' | ')).to.be.above(0);
      if (withFloor.includes(row[0] as typeof withFloor[number])) expect(row[6], row.join(' | ')).to.match(/^[+-][0-9.,]+ \/ [+-][0-9.,]+ \/ [+-][0-9.,]+$/);
    }
    const targets = tableRows(stdout, '| target (1 KB digest; medians of per-round figures) | CPU per message (primary) | msgs/s | goal | met (on CPU unless the goal says msgs/s) |');
    expect(targets.map((row) => row[0])).to.include.members(['per-message plain over the bare connect/end floor', 'per-message plain vs 0.1.6', 'keepAlive TLS vs bare persistent TLS socket', 'default TLS mode (pooled) vs 0.1.6 per message']);
    for (const row of targets) expect(row[1], row.join(' | ')).to.match(/^([+-][0-9.,]+ µs\/msg|[0-9.,]+x)$/);

    // Per-message plain, each side interleaved against the same bare peer.
    const sides2 = tableRows(stdout, '| side | bare | 0.1.6 | this transport | 0.1.6 over bare | this transport over bare |');
    expect(sides2.map((row) => row[0])).to.deep.equal(['sender (receiver: bare)', 'receiver (sender: bare)', 'both']);
    for (const row of sides2) {
      for (const cell of row.slice(1, 4)) expect(Number(cell.replace(/,/g, '')), row.join(' | ')).to.be.above(0);
      for (const cell of row.slice(4)) expect(cell, row.join(' | ')).to.match(/^[+-][0-9.,]+ \([+-][0-9.,]+ to [+-][0-9.,]+\)$/);
    }
    const interleavedTargets = tableRows(stdout, '| target (per-message plain, interleaved) | figure | goal | met |');
    expect(interleavedTargets.map((row) => row[0])).to.deep.equal(['this transport over the bare connect/end floor, both sides', 'this transport vs 0.1.6, CPU per message of both sides (0.1.6\'s / this transport\'s)']);

    // Parse and validate, before and after the specialised check, for each frame.
    const parse = tableRows(stdout, '| message | JSON.parse alone | parseMessage before (ajv\'s code alone, UTF-8 decoding) | parseMessage after (specialised check, ajv behind it) | after / before (min-max) | before - JSON.parse alone | after - JSON.parse alone |');
    expect(parse.map((row) => row[0])).to.deep.equal(['1 KB digest (16 peers)', '100-peer digest', '5 deltas', '64 KB deltas']);
    for (const row of parse) {
      for (const cell of row.slice(1, 4)) expect(Number(cell.replace(/,/g, '')), row.join(' | ')).to.be.above(0);
      expect(row[4], row.join(' | ')).to.match(/^[0-9.]+x \([0-9.]+-[0-9.]+\)$/);
    }

    const clusters = tableRows(stdout, '| peers | mode | per-source limits | 99% of keys | converged | CPU | connections / pair | handshakes full / resumed per peer | connect timeouts | inbound refusals | other errors |');
    expect(clusters).to.have.length(6);
    for (const row of clusters) {
      expect(row[2], row.join(' | ')).to.match(/^(default|lifted)$/);
      expect(row[3], row.join(' | ')).to.match(/^[0-9.]+ s$/);
      expect(row[4], row.join(' | ')).to.match(/^[0-9.]+ s$/);
      expect(Number(row[6]), row.join(' | ')).to.be.above(0);
      if (!row[1]!.startsWith('plain')) expect(row[7], row.join(' | ')).to.match(/^[0-9.]+ \/ [0-9.]+$/);
      expect(Number(row[8]), row.join(' | ')).to.be.at.least(0);
    }
  });
});
