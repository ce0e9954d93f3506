import { expect } from 'chai';
import { Admission, RefusalLog, chooseVictim, type EvictionCandidate } from '../../src/inbound/admission';
import { sourceOf } from '../../src/net/addresses';

describe('admission', () => {
  describe('sourceOf', () => {
    it('is the address itself for IPv4', () => {
      expect(sourceOf('10.1.2.3')).to.equal('10.1.2.3');
      expect(sourceOf('127.0.0.2')).to.not.equal(sourceOf('127.0.0.3'));
    });

    it('maps an IPv4-mapped IPv6 address to its IPv4 address', () => {
      expect(sourceOf('::ffff:10.1.2.3')).to.equal('10.1.2.3');
      expect(sourceOf('::FFFF:127.0.0.1')).to.equal('127.0.0.1');
      expect(sourceOf('0:0:0:0:0:ffff:10.1.2.3')).to.equal('10.1.2.3');
    });

    it('is the /64 for IPv6, however the address is written', () => {
      const a = sourceOf('2001:db8:1:2:aaaa:bbbb:cccc:dddd');
      expect(a).to.equal('2001:db8:1:2::/64');
      expect(sourceOf('2001:0db8:0001:0002::1')).to.equal(a);
      expect(sourceOf('2001:DB8:1:2:ffff::')).to.equal(a);
      expect(sourceOf('2001:db8:1:3::1')).to.not.equal(a);
      expect(sourceOf('2001:db8::1')).to.equal('2001:db8:0:0::/64');
      expect(sourceOf('::1')).to.equal('0:0:0:0::/64');
      expect(sourceOf('fe80::1%eth0')).to.equal(sourceOf('fe80::2%eth1'));
    });

    it('puts unknown addresses in one source', () => {
      expect(sourceOf(undefined)).to.equal(sourceOf(''));
    });
  });

  describe('Admission', () => {
    it('refuses a source at maxPerSource until one of its connections closes, others unaffected', () => {
      const a = new Admission({ maxPerSource: 2, ratePerSource: 1000, maxSources: 100 });
      expect(a.admit('x', 0)).to.equal(undefined);
      expect(a.admit('x', 0)).to.equal(undefined);
      expect(a.admit('x', 0)).to.equal('source-connections');
      expect(a.admit('y', 0)).to.equal(undefined);
      expect(a.openBy('x')).to.equal(2);
      a.release('x');
      expect(a.admit('x', 0)).to.equal(undefined);
    });

    it('keeps a bucket when the clock it is given steps back, and refills it from there', () => {
      const a = new Admission({ maxPerSource: 100, ratePerSource: 50, maxSources: 100 });
      const t = 10_000_000;
      expect(a.admit('x', t)).to.equal(undefined);
      // An hour back: no refill, but no hour-long debt either.
      expect(a.admit('x', t - 3_600_000)).to.equal(undefined);
      for (let i = 0; i < 48; i++) a.admit('x', t - 3_600_000);
      expect(a.admit('x', t - 3_600_000)).to.equal('source-rate');
      expect(a.admit('x', t - 3_600_000 + 100)).to.equal(undefined);
    });

    it('allows a burst of one second\'s worth, then the sustained rate', () => {
      const a = new Admission({ maxPerSource: Infinity, ratePerSource: 10, maxSources: 100 });
      let admitted = 0;
      for (let i = 0; i < 50; i++) if (a.admit('x', 0) === undefined) admitted++;
      expect(admitted).to.equal(10);
      expect(a.admit('x', 0)).to.equal('source-rate');
      // 100 ms later: one more token.
      expect(a.admit('x', 100)).to.equal(undefined);
      expect(a.admit('x', 100)).to.equal('source-rate');
      // Over 10 s at a steady pace, about 10 per second.
      admitted = 0;
      for (let t = 200; t < 10200; t += 10) if (a.admit('x', t) === undefined) admitted++;
      expect(admitted).to.be.within(99, 101);
      expect(a.admit('y', 10200)).to.equal(undefined);
    });

    it('has no rate limit when the rate is Infinity', () => {
      const a = new Admission({ maxPerSource: Infinity, ratePerSource: Infinity, maxSources: 100 });
      for (let i = 0; i < 10000; i++) expect(a.admit('x', 0)).to.equal(undefined);
    });

    it('forgets sources that hold nothing once their bucket is full again', () => {
      const a = new Admission({ maxPerSource: 4, ratePerSource: 10, maxSources: 100 });
      a.admit('idle', 0);
      a.release('idle');
      a.admit('holding', 0);
      a.sweep(50);
      expect(a.size).to.equal(2);
      a.sweep(1000);
      expect(a.size).to.equal(1);
      expect(a.openBy('holding')).to.equal(1);
    });

    it('remembers at most maxSources, forgetting idle ones first and never one holding a connection', () => {
      const a = new Admission({ maxPerSource: 4, ratePerSource: 1, maxSources: 3 });
      a.admit('holding', 0);
      for (let i = 0; i < 1000; i++) {
        a.admit(`s${i}`, 0);
        a.release(`s${i}`);
      }
      expect(a.size).to.be.at.most(3);
      expect(a.openBy('holding')).to.equal(1);
      // The bucket of the source still holding a connection was kept: it is still empty.
      expect(a.admit('holding', 0)).to.equal('source-rate');
    });
  });

  describe('chooseVictim', () => {
    const conn = (source: string, lastActive: number, frameStarted = 0): EvictionCandidate => ({ source, lastActive, frameStarted });
    const countsOf = (conns: EvictionCandidate[]) => (source: string): number => conns.filter((c) => c.source === source).length;

    it('takes from the source holding the most, never from one holding fewer', () => {
      const conns = [conn('legit', 0), conn('a', 100, 90), conn('a', 200, 150), conn('a', 300, 250)];
      expect(chooseVictim(conns, countsOf(conns))!.source).to.equal('a');
    });

    it('takes that source\'s longest-idle connection between frames first', () => {
      const conns = [conn('a', 10, 5), conn('a', 50), conn('a', 40), conn('b', 0)];
      expect(chooseVictim(conns, countsOf(conns))).to.equal(conns[2]);
    });

    it('else its oldest unfinished frame, however recently it sent a byte', () => {
      const conns = [conn('a', 1000, 300), conn('a', 999, 100), conn('a', 10, 200)];
      expect(chooseVictim(conns, countsOf(conns))).to.equal(conns[1]);
    });

    it('among sources tied for the most, picks the best candidate overall', () => {
      const conns = [conn('a', 10, 5), conn('a', 20, 6), conn('b', 30), conn('b', 40, 1)];
      expect(chooseVictim(conns, countsOf(conns))).to.equal(conns[2]);
    });

    it('returns undefined when nothing is held', () => {
      expect(chooseVictim([], () => 0)).to.equal(undefined);
    });
  });

  describe('RefusalLog', () => {
    it('reports the first refusal of a source at once and holds the rest for the flush', () => {
      const log = new RefusalLog(1000, 10);
      expect(log.note('x', 'source-rate', 0)).to.deep.equal({ source: 'x', count: 1, reasons: { 'source-rate': 1 } });
      for (let i = 0; i < 99; i++) expect(log.note('x', i % 2 === 0 ? 'source-rate' : 'evicted', 10)).to.equal(undefined);
      expect(log.note('y', 'evicted', 10)).to.have.property('count', 1);
      expect(log.flush(500)).to.deep.equal([]);
      expect(log.flush(1000)).to.deep.equal([{ source: 'x', count: 99, reasons: { 'source-rate': 50, evicted: 49 } }]);
    });

    it('gives a steady attack one report per source per interval', () => {
      const log = new RefusalLog(1000, 10);
      let reports = 0;
      for (let t = 0; t < 10000; t += 10) {
        if (log.note('x', 'source-rate', t) !== undefined) reports++;
        reports += log.flush(t).length;
      }
      expect(reports).to.be.within(10, 11);
    });

    it('reports a source quiet for a whole interval at once again', () => {
      const log = new RefusalLog(1000, 10);
      log.note('x', 'source-rate', 0);
      log.note('x', 'source-rate', 1);
      expect(log.flush(1000)).to.have.length(1);
      expect(log.flush(2000)).to.deep.equal([]);
      expect(log.note('x', 'source-rate', 2500)).to.have.property('count', 1);
    });

    it('sums sources past its budget under "*"', () => {
      const log = new RefusalLog(1000, 3);
      const now = [];
      for (let i = 0; i < 1000; i++) {
        const report = log.note(`s${i}`, 'source-rate', 0);
        if (report) now.push(report.source);
      }
      // s3 opened '*' (reported at once); s4 to s999 were summed into it.
      expect(now).to.deep.equal(['s0', 's1', 's2', '*']);
      expect(log.note('s999', 'source-rate', 0)).to.equal(undefined);
      expect(log.flush(1000)).to.deep.equal([{ source: '*', count: 997, reasons: { 'source-rate': 997 } }]);
    });

    it('takes a count', () => {
      const log = new RefusalLog(1000, 3);
      expect(log.note('x', 'max-peers', 0, 500)).to.deep.equal({ source: 'x', count: 500, reasons: { 'max-peers': 500 } });
    });
  });
});
