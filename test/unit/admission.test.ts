import { expect } from 'chai';
import { Admission, CONTENTION_HOLD, RefusalLog, chooseVictim, type EvictionCandidate } from '../../src/inbound/admission';
import { sourceGroups, sourceOf } from '../../src/net/addresses';

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
    // maxConnections 1: one connection held makes the node contended, so these
    // show the limits themselves; the tests after them show when they apply.
    it('under contention, refuses a source at its share until one of its connections closes, others unaffected', () => {
      // 3 of 4 held: contended. Three sources share 4 slots: 1 each (maxPerSource 1).
      const a = new Admission({ maxPerSource: 1, ratePerSource: 1000, maxSources: 100, maxConnections: 4 });
      expect(a.admit('x', 0)).to.equal(undefined);
      expect(a.admit('y', 0)).to.equal(undefined);
      expect(a.admit('z', 0)).to.equal(undefined);
      expect(a.contended(0)).to.equal(true);
      expect(a.admit('x', 0)).to.equal('source-connections');
      expect(a.openBy('x')).to.equal(1);
      a.release('x');
      expect(a.admit('x', 0)).to.equal(undefined);
      // A source holding nothing is within its share.
      expect(a.admit('w', 0)).to.equal(undefined);
    });

    it('keeps a bucket when the clock it is given steps back, and refills it from there', () => {
      const a = new Admission({ maxPerSource: 100, ratePerSource: 50, maxSources: 100, maxConnections: 1 });
      const t = 10_000_000;
      expect(a.admit('x', t)).to.equal(undefined);
      // An hour back: no refill, but no hour-long debt either.
      expect(a.admit('x', t - 3_600_000)).to.equal(undefined);
      for (let i = 0; i < 48; i++) a.admit('x', t - 3_600_000);
      expect(a.admit('x', t - 3_600_000)).to.equal('source-rate');
      expect(a.admit('x', t - 3_600_000 + 100)).to.equal(undefined);
    });

    it('allows a burst of one second\'s worth, then the sustained rate', () => {
      const a = new Admission({ maxPerSource: Infinity, ratePerSource: 10, maxSources: 100, maxConnections: 1 });
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
      const a = new Admission({ maxPerSource: Infinity, ratePerSource: Infinity, maxSources: 100, maxConnections: 1 });
      for (let i = 0; i < 10000; i++) expect(a.admit('x', 0)).to.equal(undefined);
    });

    it('forgets sources that hold nothing once their bucket is full again', () => {
      const a = new Admission({ maxPerSource: 4, ratePerSource: 10, maxSources: 100, maxConnections: 100 });
      a.admit('idle', 0);
      a.release('idle', true);
      a.admit('holding', 0);
      a.sweep(50);
      expect(a.size).to.equal(2);
      a.sweep(1000);
      expect(a.size).to.equal(1);
      expect(a.openBy('holding')).to.equal(1);
    });

    it('remembers at most maxSources, forgetting idle ones first and never one holding a connection', () => {
      const a = new Admission({ maxPerSource: 4, ratePerSource: 1, maxSources: 3, maxConnections: 1 });
      a.admit('holding', 0);
      for (let i = 0; i < 1000; i++) {
        a.admit(`s${i}`, 0);
        a.release(`s${i}`, true);
      }
      expect(a.size).to.be.at.most(3);
      expect(a.openBy('holding')).to.equal(1);
      // The bucket of the source still holding a connection was kept: it is still empty.
      expect(a.admit('holding', 0)).to.equal('source-rate');
    });

    describe('work-conserving: the limits bite only under contention', () => {
      it('lets one source past both limits while the node holds less than 3/4 of maxConnections', () => {
        const a = new Admission({ maxPerSource: 2, ratePerSource: 5, maxSources: 100, maxConnections: 256 });
        // 150 at once (30 times the rate), 75 times maxPerSource: nobody else wants the room.
        for (let i = 0; i < 150; i++) expect(a.admit('x', 0), `connection ${i}`).to.equal(undefined);
        expect(a.contended(0)).to.equal(false);
        // Thousands a second over time, each closing again (one sender, one connection per message).
        for (let t = 1; t < 2000; t++) {
          expect(a.admit('x', t)).to.equal(undefined);
          a.release('x', true);
        }
      });

      it('applies them from 3/4 of maxConnections held, and for CONTENTION_HOLD after the node falls below', () => {
        const a = new Admission({ maxPerSource: 2, ratePerSource: 5, maxSources: 100, maxConnections: 8 });
        for (let i = 0; i < 5; i++) expect(a.admit('x', 0)).to.equal(undefined);
        expect(a.admit('y', 0)).to.equal(undefined);
        // 6 of 8 held: x (5, share max(2, 8/2) = 4) is refused; y (1) is not.
        expect(a.admit('x', 0)).to.equal('source-connections');
        expect(a.admit('y', 0)).to.equal(undefined);
        // Back to 4 held: still contended until the hold has passed.
        for (let i = 0; i < 3; i++) a.release('x');
        expect(a.admit('x', 0)).to.equal('source-rate');
        expect(a.contended(CONTENTION_HOLD - 1)).to.equal(true);
        expect(a.contended(CONTENTION_HOLD + 1)).to.equal(false);
        expect(a.admit('x', CONTENTION_HOLD + 1)).to.equal(undefined);
      });

      it('draws on a source\'s bucket while uncontended, so the heaviest source is the first held back', () => {
        const a = new Admission({ maxPerSource: 100, ratePerSource: 10, maxSources: 100, maxConnections: 4 });
        // Uncontended: x opens and closes 20 (its bucket of 10 is emptied, never below).
        for (let i = 0; i < 20; i++) {
          expect(a.admit('x', 0)).to.equal(undefined);
          a.release('x', true);
        }
        for (const s of ['p', 'q', 'r']) a.admit(s, 0);
        // 3 of 4 held: x has no token left; a light source has its burst.
        expect(a.admit('x', 0)).to.equal('source-rate');
        expect(a.admit('y', 0)).to.equal(undefined);
      });

      it('counts TLS handshakes in progress from more than one source as contention, from one source alone not', () => {
        const a = new Admission({ maxPerSource: 100, ratePerSource: 10, maxSources: 100, maxConnections: 1000, handshakeBacklog: 8 });
        // One source, 40 handshakes in progress: it is all the node has to serve.
        for (let i = 0; i < 40; i++) expect(a.admit('flood', 0)).to.equal(undefined);
        expect(a.contended(0)).to.equal(false);
        // Another source starts a handshake: CPU is now contended, and the flood (bucket empty) waits.
        expect(a.admit('peer', 0)).to.equal(undefined);
        expect(a.admit('flood', 0)).to.equal('source-rate');
        // Its handshakes done (open), the backlog falls to 1 source: free again after the hold.
        for (let i = 0; i < 40; i++) a.opened('flood');
        a.opened('peer');
        expect(a.admit('flood', CONTENTION_HOLD + 1)).to.equal(undefined);
      });
    });
  });

  describe('chooseVictim', () => {
    /** A connection that has delivered frames (proven), or (`delivered` 0) none. */
    const conn = (source: string, lastActive: number, frameStarted = 0, delivered = 1, acceptedAt = 0): EvictionCandidate => ({ source, lastActive, frameStarted, framesDelivered: delivered, acceptedAt });

    it('takes from the source holding the most, never from one holding fewer', () => {
      const conns = [conn('legit', 0), conn('a', 100, 90), conn('a', 200, 150), conn('a', 300, 250)];
      expect(chooseVictim(conns)!.source).to.equal('a');
    });

    it('takes that source\'s longest-idle connection between frames first', () => {
      const conns = [conn('a', 10, 5), conn('a', 50), conn('a', 40), conn('b', 0)];
      expect(chooseVictim(conns)).to.equal(conns[2]);
    });

    it('else its oldest unfinished frame, however recently it sent a byte', () => {
      const conns = [conn('a', 1000, 300), conn('a', 999, 100), conn('a', 10, 200)];
      expect(chooseVictim(conns)).to.equal(conns[1]);
    });

    it('among sources tied for the most, picks the best candidate overall', () => {
      const conns = [conn('a', 10, 5), conn('a', 20, 6), conn('b', 30), conn('b', 40, 1)];
      expect(chooseVictim(conns)).to.equal(conns[2]);
    });

    it('returns undefined when nothing is held', () => {
      expect(chooseVictim([])).to.equal(undefined);
    });

    describe('by behaviour', () => {
      it('evicts a connection that delivered nothing before any that delivered frames, whatever the shares', () => {
        // A source with many proven connections; one newcomer elsewhere that has proven nothing.
        const conns = [...Array.from({ length: 10 }, (_, i) => conn('busy', i)), conn('new', 50, 0, 0, 49)];
        expect(chooseVictim(conns)).to.equal(conns[10]);
      });

      it('among those, the one held longest: 255 sources dripping a frame for seconds go before a connection made just now', () => {
        const dripping = Array.from({ length: 255 }, (_, i) => conn(`10.0.${i >> 8}.${i & 255}`, 19_000 + i, 1000 + i, 0, 1000 + i));
        const fresh = conn('127.0.0.1', 19_990, 0, 0, 19_990);
        const conns = [fresh, ...dripping];
        for (let round = 0; round < 255; round++) {
          const victim = chooseVictim(conns)!;
          expect(victim, `round ${round}`).to.not.equal(fresh);
          conns.splice(conns.indexOf(victim), 1);
        }
      });

      it('counts the share among connections of the same proof: a source\'s proven connections do not make its newcomer a target', () => {
        const conns = [...Array.from({ length: 40 }, (_, i) => conn('nat', i)), conn('nat', 100, 0, 0, 100), conn('x', 90, 80, 0, 10)];
        expect(chooseVictim(conns)).to.equal(conns[41]);
      });

      it('groups IPv6 sources by /48, then /56, then /64: one allocation over many /64s is one party', () => {
        // 20 connections from 20 /64s of one /48, each the only one of its /64; two from one IPv4 address.
        const spread = Array.from({ length: 20 }, (_, i) => conn(sourceOf(`2001:db8:7:${i.toString(16)}::1`), 0, 0, 0, 100 + i));
        const ipv4 = [conn('192.0.2.1', 0, 0, 0, 1), conn('192.0.2.1', 0, 0, 0, 2)];
        expect(chooseVictim([...ipv4, ...spread])!.source).to.match(/^2001:db8:7:/);
        // Within the /48, the /56 holding more goes first: 3 in 2001:db8:9:100::/56 against 2 in 2001:db8:9::/56.
        const two56 = [
          conn(sourceOf('2001:db8:9:1::1'), 0, 0, 0, 1), conn(sourceOf('2001:db8:9:2::1'), 0, 0, 0, 2),
          conn(sourceOf('2001:db8:9:101::1'), 0, 0, 0, 3), conn(sourceOf('2001:db8:9:102::1'), 0, 0, 0, 4), conn(sourceOf('2001:db8:9:103::1'), 0, 0, 0, 5)
        ];
        expect(chooseVictim(two56)).to.equal(two56[2]);
        expect(sourceGroups(sourceOf('2001:db8:9:1a2b::1'))).to.deep.equal(['2001:db8:9::/48', '2001:db8:9:1a00::/56', '2001:db8:9:1a2b::/64']);
        expect(sourceGroups('10.1.2.3')).to.deep.equal(['10.1.2.3', '10.1.2.3', '10.1.2.3']);
      });
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
