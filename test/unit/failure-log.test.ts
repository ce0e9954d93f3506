/**
 * FailureLog (src/outbound/failure-log.ts): repeated failures reported once
 * per interval per key, the first at once, with counts and summed frame
 * counts. The clock is the test's own: no wall clock.
 */
import { expect } from 'chai';
import { FailureLog, type Countable } from '../../src/outbound/failure-log';

function refused (framesDropped = 1): Countable & { code: string } {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9002'), { code: 'ECONNREFUSED', framesDropped });
}

describe('FailureLog', () => {
  it('reports the first failure of a key at once, holds the rest, and reports them together once the interval has passed', () => {
    const log = new FailureLog(60000, 64);
    const first = refused();
    expect(log.note('a', first, 0)).to.equal(first);
    expect(first.count).to.equal(1);
    for (let t = 1000; t < 60000; t += 1000) expect(log.note('a', refused(2), t), `at ${t}`).to.equal(undefined);
    expect(log.holding).to.equal(true);
    expect(log.flush(59999), 'not before the interval').to.deep.equal([]);
    const [summary, ...rest] = log.flush(60000);
    expect(rest).to.deep.equal([]);
    expect(summary!.count).to.equal(59);
    expect(summary!.framesDropped, 'frame counts summed').to.equal(118);
    expect(summary!.message).to.match(/^connect ECONNREFUSED 127\.0\.0\.1:9002 \(59 time\(s\) in the last 60 s\)$/);
    expect(log.holding).to.equal(false);
  });

  it('keeps one report per interval while the failures go on, and forgets a key quiet for a whole interval', () => {
    const log = new FailureLog(10, 64);
    expect(log.note('a', refused(), 0)).to.not.equal(undefined);
    expect(log.note('a', refused(), 5)).to.equal(undefined);
    expect(log.flush(10).map((e) => e.count)).to.deep.equal([1]);
    expect(log.note('a', refused(), 12), 'still the same outage: held').to.equal(undefined);
    expect(log.flush(20).map((e) => e.count)).to.deep.equal([1]);
    expect(log.flush(30), 'nothing held: forgotten').to.deep.equal([]);
    expect(log.size).to.equal(0);
    expect(log.note('a', refused(), 31)?.count, 'a new outage is reported at once').to.equal(1);
  });

  it('reports what is held at the next flush once the condition has ended, then reports the next failure at once', () => {
    const log = new FailureLog(60000, 64);
    log.note('a', refused(), 0);
    log.note('a', refused(), 100);
    log.note('a', refused(), 200);
    log.end('a');
    const [summary] = log.flush(300);
    expect(summary!.count).to.equal(2);
    expect(summary!.message).to.match(/answers again\)$/);
    expect(log.size).to.equal(0);
    expect(log.note('a', refused(), 400)?.count).to.equal(1);
    log.end('a');
    expect(log.size, 'nothing held: forgotten at once').to.equal(0);
  });

  it('keeps keys apart, and past maxKeys sums new keys into one overflow entry', () => {
    const log = new FailureLog(1000, 2);
    expect(log.note('a', refused(), 0)).to.not.equal(undefined);
    expect(log.note('b', refused(), 0)).to.not.equal(undefined);
    const overflow = log.note('c', refused(), 0);
    expect(overflow?.count, 'the first past the cap is still reported').to.equal(1);
    for (const key of ['d', 'e', 'f', 'c']) expect(log.note(key, refused(), 1), key).to.equal(undefined);
    expect(log.size).to.equal(3);
    const [summary] = log.flush(1000);
    expect(summary!.count).to.equal(4);
    expect(summary!.message).to.match(/to 4 destination\(s\) past the first 2/);
  });

  it('drain() reports everything held and empties the log', () => {
    const log = new FailureLog(60000, 64);
    log.note('a', refused(), 0);
    log.note('a', refused(3), 1);
    log.note('b', refused(), 0);
    const drained = log.drain(2);
    expect(drained.map((e) => [e.count, e.framesDropped])).to.deep.equal([[1, 3]]);
    expect(log.size).to.equal(0);
  });

  it('adds no frame count an error did not carry', () => {
    const log = new FailureLog(10, 64);
    const bare = (): Countable => Object.assign(new Error('x'), { code: 'ERR_CONNECT_TIMEOUT' });
    log.note('a', bare(), 0);
    log.note('a', bare(), 1);
    const [summary] = log.flush(10);
    expect(summary).to.not.have.property('framesWritten');
    expect(summary).to.not.have.property('framesLost');
    expect(summary).to.not.have.property('framesDropped');
  });
});
