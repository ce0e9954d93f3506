/**
 * The outbound gate's fair share, its deadline on name resolution, the one
 * memory budget, the aggregation of outbound refusals, and allow-lists by
 * address family: pure, with stand-ins for sockets.
 */
import { expect } from 'chai';
import { BlockList } from 'node:net';
import { Lease, MemoryBudget, OutboundGate } from '../../src/outbound/gate';
import { OutboundRefusals, isRefusal, reasonOf } from '../../src/outbound/refusals';
import { allowList } from '../../src/net/addresses';
import { BackpressureError, DestinationRefusedError, OutboundLimitError } from '../../src/errors';
import { resolveOptions, type OutboundOptions } from '../../src/options';

/** A stand-in for a socket: records the error it was destroyed with. */
class Holder {
  destroyed: Error | undefined;
  destroy (error?: Error): void {
    this.destroyed = error;
  }
}

function gateOf (outbound: OutboundOptions, lookupTimeout?: number): OutboundGate {
  return new OutboundGate(resolveOptions({ outbound }).outbound, lookupTimeout);
}

/** Opens a lease to 10.0.0.<n>:9 holding a socket stand-in; the refusal's code when refused. */
function open (gate: OutboundGate, n: number): { lease: Lease; holder: Holder } | string {
  const result = gate.openNow(`10.0.0.${n}`, 9);
  if (!(result instanceof Lease)) return (result as unknown as { code: string }).code;
  const holder = new Holder();
  result.holder = holder;
  return { lease: result, holder };
}

describe('outbound gate', () => {
  describe('fair share at outbound.maxConnections', () => {
    it('gives a new destination a slot taken back from a destination that never completed an exchange, the one holding the most', () => {
      const gate = gateOf({ maxConnections: 4 });
      const tarpit = [open(gate, 1), open(gate, 1), open(gate, 1)] as Array<{ lease: Lease; holder: Holder }>;
      const other = open(gate, 2) as { holder: Holder };
      expect(gate.inFlight).to.equal(4);
      const honest = open(gate, 3);
      expect(honest).to.be.an('object');
      // The oldest slot of the tarpit (3 held) went, not the destination holding 1.
      expect(tarpit[0]!.holder.destroyed).to.be.instanceOf(OutboundLimitError);
      expect(tarpit[0]!.holder.destroyed).to.include({ code: 'ERR_OUTBOUND_LIMIT', limit: 'maxConnections', evicted: 'never completed an exchange', remoteAddress: '10.0.0.1', remotePort: 9 });
      expect(other.holder.destroyed).to.equal(undefined);
      expect(gate.inFlight).to.equal(4);
      expect(gate.toDestination('10.0.0.1:9')).to.equal(2);
      // The evicted lease's own release (its socket closing) gives nothing back twice.
      tarpit[0]!.lease.release();
      expect(gate.inFlight).to.equal(4);
    });

    it('lets a stranger take only from a destination that would still hold at least as many, so strangers do not churn each other', () => {
      const gate = gateOf({ maxConnections: 4 });
      for (let n = 1; n <= 4; n++) open(gate, n);
      // Every destination holds 1: a fifth (holding 0) gains nothing by a swap.
      expect(open(gate, 5)).to.equal('ERR_OUTBOUND_LIMIT');
      expect(gate.inFlight).to.equal(4);
    });

    it('lets a proven destination take a slot from one that never completed an exchange, whatever it holds', () => {
      const gate = gateOf({ maxConnections: 4 });
      const first = open(gate, 9) as { lease: Lease };
      first.lease.completed();
      first.lease.release();
      expect(gate.isProven('10.0.0.9:9')).to.equal(true);
      const strangers = [1, 2, 3, 4].map((n) => open(gate, n) as { holder: Holder });
      expect(open(gate, 9)).to.be.an('object');
      expect(strangers.filter((s) => s.holder.destroyed !== undefined)).to.have.length(1);
      // A destination whose last exchange failed is a stranger again.
      const again = gateOf({ maxConnections: 4 });
      const once = open(again, 9) as { lease: Lease };
      once.lease.completed();
      once.lease.release();
      const failed = open(again, 9) as { lease: Lease };
      failed.lease.release();
      expect(again.isProven('10.0.0.9:9')).to.equal(false);
    });

    it('takes from proven destinations only the one holding the most, and only past one more than the newcomer', () => {
      const gate = gateOf({ maxConnections: 4 });
      const big = [open(gate, 1), open(gate, 1), open(gate, 1)] as Array<{ lease: Lease; holder: Holder }>;
      for (const b of big) b.lease.completed();
      const small = open(gate, 2) as { lease: Lease; holder: Holder };
      small.lease.completed();
      expect(open(gate, 3)).to.be.an('object');
      expect(big[0]!.holder.destroyed).to.include({ evicted: 'held the most' });
      expect(small.holder.destroyed).to.equal(undefined);
    });

    it('never takes a slot whose owner holds no socket yet (a name resolving: bounded by its own deadline)', () => {
      const gate = gateOf({ maxConnections: 2 });
      gate.openNow('10.0.0.1', 9);
      gate.openNow('10.0.0.1', 9);
      expect(open(gate, 2)).to.equal('ERR_OUTBOUND_LIMIT');
    });
  });

  describe('name resolution', () => {
    it('gives up on a lookup that never answers at its deadline, and gives its slot back', async () => {
      const lookup = (): void => {};
      const gate = new OutboundGate(resolveOptions({ outbound: { lookup, maxConnections: 1 } }).outbound, 30);
      const result = await new Promise<{ error: Error | undefined; inFlight: number }>((resolve) => {
        gate.open('never.test', 9, (error) => resolve({ error, inFlight: gate.inFlight }));
        expect(gate.inFlight).to.equal(1);
      });
      expect(result.error).to.include({ code: 'ERR_DESTINATION_REFUSED' });
      expect(result.error!.message).to.match(/did not resolve \(ETIMEOUT\)/);
      expect(result.inFlight).to.equal(0);
    });
  });

  describe('memory budget', () => {
    it('charges until full, refuses what does not fit after asking the pool to give way, and takes back what is given', () => {
      const budget = new MemoryBudget(100);
      const asked: Array<[number, number, boolean]> = [];
      budget.reclaim = (bytes, held, proven) => { asked.push([bytes, held, proven]); };
      expect(budget.take(60)).to.equal(true);
      expect(budget.take(40)).to.equal(true);
      expect(budget.take(1, 5, true)).to.equal(false);
      // Asked for the 1 byte missing, for a destination that would hold 6.
      expect(asked).to.deep.equal([[1, 6, true]]);
      budget.give(40);
      expect(budget.take(30)).to.equal(true);
      expect(budget.used).to.equal(90);
      budget.reclaim = (bytes) => budget.give(bytes);
      expect(budget.take(20)).to.equal(true);
    });
  });

  describe('outbound refusals, aggregated', () => {
    const refusal = (port: number, framesDropped = 1): Error => Object.assign(new OutboundLimitError('maxConnections', 4, { remoteAddress: '10.0.0.1', remotePort: port }), { framesDropped });

    it('reports the first per destination and code at once, counts the rest, and gives them as one report with their frames', () => {
      const reported: Error[] = [];
      const emitted: Error[] = [];
      const counted: string[] = [];
      const log = new OutboundRefusals({ report: (e) => reported.push(e), emit: (e) => emitted.push(e), count: (c) => counted.push(c) }, 1000, () => 0);
      log.report(refusal(1));
      log.report(refusal(2));
      for (let i = 0; i < 99; i++) log.report(refusal(1, 2));
      expect(reported.map((e) => (e as unknown as { remotePort: number }).remotePort)).to.deep.equal([1, 2]);
      expect(counted).to.have.length(99);
      expect(log.byReason).to.deep.equal({ maxConnections: 101 });
      log.drain();
      expect(emitted).to.have.length(1);
      expect(emitted[0]).to.include({ code: 'ERR_OUTBOUND_LIMIT', count: 99, framesDropped: 198, remotePort: 1 });
    });

    it('aggregates refusals by a cap, the memory budget, backpressure and the allow-list, and nothing else', () => {
      expect(isRefusal(refusal(1))).to.equal(true);
      expect(isRefusal(new OutboundLimitError('maxQueuedBytes', 1, {}, 'never completed a connection'))).to.equal(true);
      expect(isRefusal(new BackpressureError(1, 1))).to.equal(true);
      expect(isRefusal(new DestinationRefusedError('x', undefined))).to.equal(true);
      expect(isRefusal(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).to.equal(false);
      expect(reasonOf(new OutboundLimitError('maxQueuedBytes', 1, {}, 'never completed a connection'))).to.equal('evicted');
      expect(reasonOf(new OutboundLimitError('maxPooledRemotes', 1))).to.equal('maxPooledRemotes');
      expect(reasonOf(new DestinationRefusedError('x', undefined))).to.equal('not-allowed');
    });
  });

  describe('allow-lists by address family', () => {
    it("reads '::/0' as every IPv6 address and no IPv4 one, and an IPv4-mapped address as IPv4", () => {
      const v6 = allowList('options.outbound.allow', ['::/0'])!;
      expect(v6.allows('2001:db8::1')).to.equal(true);
      expect(v6.allows('::1')).to.equal(true);
      // Node's BlockList alone would match these against '::/0' (as ::ffff:a.b.c.d).
      expect(v6.allows('127.0.0.1')).to.equal(false);
      expect(v6.allows('10.1.2.3')).to.equal(false);
      expect(v6.allows('::ffff:10.1.2.3')).to.equal(false);
      const v4 = allowList('options.allowFrom', ['10.0.0.0/8'])!;
      expect(v4.allows('10.1.2.3')).to.equal(true);
      expect(v4.allows('::ffff:10.1.2.3')).to.equal(true);
      expect(v4.allows('::ffff:a01:203')).to.equal(true);
      expect(v4.allows('11.0.0.1')).to.equal(false);
      expect(v4.allows('2001:db8::1')).to.equal(false);
      // A net.BlockList given as it is keeps Node's own rules; an IPv4-mapped address is still asked as IPv4.
      const list = new BlockList();
      list.addSubnet('10.0.0.0', 8, 'ipv4');
      expect(allowList('options.outbound.allow', list)!.allows('::ffff:10.1.2.3')).to.equal(true);
    });

    it("refuses an IPv4 destination under outbound.allow ['::/0'] with no socket opened", () => {
      const gate = gateOf({ allow: ['::/0'] });
      const refused = gate.openNow('127.0.0.1', 9);
      expect(refused).to.include({ code: 'ERR_DESTINATION_REFUSED' });
      expect(gate.inFlight).to.equal(0);
      expect(gate.openNow('::1', 9)).to.be.instanceOf(Lease);
    });
  });
});
