import { expect } from 'chai';
import { fitSlope, floorsFor, judge, type Sample } from '../../scripts/soak';
import { SOAK_SECONDS, SOAK_TITLE, startSoak } from '../support/soak.fixture';

describe('soak', () => {
  describe('fitSlope and judge', () => {
    const samples = (f: (t: number) => Partial<Sample>): Sample[] => Array.from({ length: 40 }, (_, i) => ({ t: i * 1000, rss: 1e8, heapUsed: 1e7, fds: 100, handles: 100, delivered: i, ...f(i) }));

    it('fits the slope of a line exactly', () => {
      const { slope, stderr } = fitSlope([[0, 1], [1, 3], [2, 5], [3, 7]]);
      expect(slope).to.be.closeTo(2, 1e-9);
      expect(stderr).to.be.closeTo(0, 1e-9);
    });

    it('passes flat metrics with scatter', () => {
      const { failures } = judge(samples((i) => ({ fds: 100 + (i % 5) * 7, heapUsed: 1e7 + ((i * 7919) % 13) * 50000 })), floorsFor(600000));
      expect(failures).to.deep.equal([]);
    });

    it('fails a descriptor leaked every 10 s, and heap growing 20 KB/s, over the second half', () => {
      const { failures } = judge(samples((i) => ({ fds: 100 + Math.floor(i / 10), heapUsed: 1e7 + i * 20 * 1024 })), floorsFor(600000));
      expect(failures.map((f) => f.split(' ')[0])).to.deep.equal(['heapUsed', 'fds']);
    });

    it('ignores growth confined to the first half (warm-up)', () => {
      const { failures } = judge(samples((i) => ({ rss: i < 20 ? 1e8 + i * 1e6 : 1.2e8 })), floorsFor(600000));
      expect(failures).to.deep.equal([]);
    });
  });

  it(SOAK_TITLE, async function () {
    this.timeout((SOAK_SECONDS + 60) * 1000);
    const run = await startSoak();
    const last = run.stdout.trim().split('\n').pop() ?? '';
    let result: { ok: boolean; slopes: Array<{ metric: string; slope: number; bound: number; ok: boolean }>; counts: { restarts: number; resets: number; hostile: number; deliveredSecondHalf: number }; failures: string[] };
    try {
      result = JSON.parse(last) as typeof result;
    } catch {
      throw new Error(`soak printed no result (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
    }
    const table = run.stdout.split('\n').slice(0, -2).join('\n');
    expect(result.failures, table).to.deep.equal([]);
    expect(result.slopes.map((s) => s.metric)).to.deep.equal(['rss', 'heapUsed', 'fds', 'handles']);
    for (const s of result.slopes) expect(s.slope, `${s.metric}\n${table}`).to.be.at.most(s.bound);
    // The churn happened and gossip kept flowing through it.
    expect(result.counts.restarts, table).to.be.at.least(5);
    expect(result.counts.resets, table).to.be.at.least(5);
    expect(result.counts.hostile, table).to.be.at.least(20);
    expect(result.counts.deliveredSecondHalf, table).to.be.above(0);
    expect(run.code).to.equal(0);
  });
});
