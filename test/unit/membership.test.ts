/**
 * Membership (src/inbound/membership.ts) on plain values: which ids pass,
 * which are held back, which proof attempts begin, and what bounds them.
 * The clock and the probe are the test's.
 */
import { expect } from 'chai';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Membership, REFUSED_TTL, RETRY_AFTER, type MembershipLimits, type Origin } from '../../src/inbound/membership';
import { PeerLedger } from '../../src/inbound/peer-ledger';
import type { DigestEntry, Message } from '../../src/wire/message';

const OWN = { host: '10.0.0.1', port: 9742 };
const at = (n: number): { host: string; port: number } => ({ host: `10.0.1.${n}`, port: 9742 });

function setup (limits: Partial<MembershipLimits> = {}): {
  m: Membership;
  ledger: PeerLedger;
  probes: Array<[string, string, number]>;
  clock: { now: number };
  deliver: (message: Message, origin: Origin) => Message | undefined;
} {
  const ledger = new PeerLedger(Infinity, Infinity);
  const probes: Array<[string, string, number]> = [];
  const clock = { now: 1000 };
  const m = new Membership({ enforce: true, pendingPerIntroducer: 4, proofsPerSecond: 4, proofTimeout: 10000, maxPending: 64, idsPerSource: 64, ...limits }, ledger, {
    probe: (id, host, port) => { probes.push([id, host, port]); return true; },
    ownAddress: () => OWN
  }, () => clock.now);
  m.setSelf('me');
  // What the inbound server does: membership, then the ledger (gossipmonger then knows what passed).
  const deliver = (message: Message, origin: Origin): Message | undefined => {
    const admitted = m.admit(message, origin);
    if (admitted.message !== undefined) ledger.admit(admitted.message);
    return admitted.message;
  };
  return { m, ledger, probes, clock, deliver };
}

function digest (sender: string, entries: Array<[string, { host: string; port: number } | undefined]>): Message {
  return { sender: { id: sender, transport: at(0) }, digest: entries.map(([id, transport]): DigestEntry => ({ id, maxVersionSeen: 1, ...(transport ? { transport } : {}) })) };
}

const ids = (message: Message | undefined): string[] => message?.digest?.map((e) => e.id) ?? [];
const byCertificate = (sender: string): Origin => ({ proof: 'certificate', introducer: `id:${sender}` });
const byContact = (source = '10.0.0.9'): Origin => ({ proof: 'contact', introducer: `source:${source}` });

describe('membership', () => {
  it('passes the sender and itself, holds back entries naming unproven ids, and probes each at its address', () => {
    const { m, probes, deliver } = setup();
    const message = deliver(digest('a', [['a', at(0)], ['me', OWN], ['b', at(2)], ['c', undefined]]), byCertificate('a'));
    expect(ids(message)).to.deep.equal(['a', 'me']);
    expect(m.heldBack).to.equal(2);
    // 'c' gives no address: nothing to try; it waits for its own contact.
    expect(probes).to.deep.equal([['b', '10.0.1.2', 9742]]);
    expect(m.pending).to.equal(1);
    expect(m.isProven('a')).to.equal(true);
    expect(m.isProven('b')).to.equal(false);
  });

  it('releases a held-back id with the next message naming it after its proof, at the address that was proven', () => {
    const { m, deliver } = setup();
    deliver(digest('a', [['b', at(2)]]), byCertificate('a'));
    m.proveByCertificate('b', at(2));
    expect(m.pending).to.equal(0);
    expect(m.isProvenAt('b', '10.0.1.2', 9742)).to.equal(true);
    // Another address for b (a squatter's, say) is not the one proven: still held back.
    expect(ids(deliver(digest('a', [['b', at(3)]]), byCertificate('a')))).to.deep.equal([]);
    expect(ids(deliver(digest('a', [['b', at(2)]]), byCertificate('a')))).to.deep.equal(['b']);
    // Known to gossipmonger now: whatever address an entry gives, it passes (gossipmonger ignores it).
    expect(ids(deliver(digest('a', [['b', at(3)]]), byCertificate('a')))).to.deep.equal(['b']);
  });

  it('does not give an id to an address whose certificate names another, and does not try that address again for REFUSED_TTL', () => {
    const { m, probes, clock, deliver } = setup();
    deliver(digest('squatter', [['b', at(9)]]), byCertificate('squatter'));
    m.refuse('b', '10.0.1.9', 9742, 'certificate');
    expect(m.pending).to.equal(0);
    expect(m.refused).to.equal(1);
    clock.now += REFUSED_TTL - 1;
    deliver(digest('squatter', [['b', at(9)]]), byCertificate('squatter'));
    expect(probes).to.have.length(1);
    expect(m.refused).to.equal(2);
    // The real b, proven by its own connection, passes with its own address.
    expect(ids(deliver(digest('b', [['b', at(2)]]), byCertificate('b')))).to.deep.equal(['b']);
    clock.now += 1;
    m.sweep();
    deliver(digest('squatter', [['x', at(9)]]), byCertificate('squatter'));
    expect(probes.map((p) => p[0])).to.deep.equal(['b', 'x']);
  });

  it('tries an address that failed otherwise (unreachable, no answer) again after RETRY_AFTER', () => {
    const { m, probes, clock, deliver } = setup();
    deliver(digest('a', [['b', at(2)]]), byContact());
    m.sendFailed('b', '10.0.1.2', 9742);
    expect(m.pending).to.equal(0);
    deliver(digest('a', [['b', at(2)]]), byContact());
    expect(probes).to.have.length(1);
    clock.now += RETRY_AFTER;
    m.sweep();
    deliver(digest('a', [['b', at(2)]]), byContact());
    expect(probes).to.have.length(2);
  });

  it('fails the attempt whose send failed, or every attempt at that address when they shared a connection (a pool keyed by address reports one error for all)', () => {
    const { m, deliver } = setup();
    deliver(digest('a', [['b', at(2)], ['c', at(2)], ['d', at(3)], ['e', at(3)]]), byContact());
    m.sendFailed('c', '10.0.1.2', 9742);
    expect(m.pending).to.equal(3);
    m.sendFailed('d', '10.0.1.3', 9742, true);
    expect(m.pending).to.equal(1);
    expect(m.refused).to.equal(3);
  });

  it('charges proof attempts to their introducer: pendingPerIntroducer at once, proofsPerSecond after the burst', () => {
    const { m, probes, clock, deliver } = setup({ pendingPerIntroducer: 4, proofsPerSecond: 2 });
    const fakes = Array.from({ length: 2045 }, (_, i): [string, { host: string; port: number }] => [`fake-${i}`, at(100)]);
    const message = deliver(digest('attacker', fakes), byCertificate('attacker'));
    expect(ids(message)).to.deep.equal([]);
    expect(probes).to.have.length(4);
    expect(m.pending).to.equal(4);
    expect(m.refused).to.equal(2041);
    expect(m.heldBack).to.equal(2045);
    // Another introducer has a share of its own.
    deliver(digest('honest', [['new', at(7)]]), byCertificate('honest'));
    expect(probes.map((p) => p[0])).to.include('new');
    // The attacker's attempts fail; its bucket refills at proofsPerSecond, not at once.
    for (const [id, host, port] of probes.slice(0, 4)) m.sendFailed(id, host, port);
    clock.now += 1000;
    deliver(digest('attacker', fakes.slice(4, 100)), byCertificate('attacker'));
    expect(probes).to.have.length(5 + 2);
  });

  it('tries each id at each address once at a time, however many messages name it', () => {
    const { m, probes, deliver } = setup();
    deliver(digest('a', [['b', at(2)], ['b', at(2)]]), byCertificate('a'));
    deliver(digest('z', [['b', at(2)]]), byCertificate('z'));
    expect(probes).to.deep.equal([['b', '10.0.1.2', 9742]]);
    expect(m.pending).to.equal(1);
    // Another address is another attempt.
    deliver(digest('z', [['b', at(3)]]), byCertificate('z'));
    expect(probes).to.have.length(2);
  });

  it('caps an introducer\'s attempts under way at pendingPerIntroducer, however fast its bucket refills', () => {
    const { m, probes, clock, deliver } = setup({ pendingPerIntroducer: 2, proofsPerSecond: 1000 });
    const fakes = Array.from({ length: 10 }, (_, i): [string, { host: string; port: number }] => [`fake-${i}`, at(100 + i)]);
    deliver(digest('attacker', fakes), byCertificate('attacker'));
    clock.now += 1000;
    deliver(digest('attacker', fakes), byCertificate('attacker'));
    // Two under way (they neither answer nor fail yet): no third, whatever the rate.
    expect(probes).to.have.length(2);
    expect(m.pending).to.equal(2);
  });

  it('fails attempts that take longer than proofTimeout, which frees the introducer\'s share', () => {
    const { m, probes, clock, deliver } = setup({ pendingPerIntroducer: 1 });
    deliver(digest('a', [['b', at(2)], ['c', at(3)]]), byContact());
    expect(probes).to.have.length(1);
    clock.now += 9999;
    m.sweep();
    expect(m.pending).to.equal(1);
    clock.now += 1;
    m.sweep();
    expect(m.pending).to.equal(0);
    clock.now += 1000;
    deliver(digest('a', [['c', at(3)]]), byContact());
    expect(probes.map((p) => p[0])).to.deep.equal(['b', 'c']);
  });

  it('makes room at maxPending by failing the oldest attempt', () => {
    const { m, probes, deliver } = setup({ maxPending: 2 });
    deliver(digest('a', [['b', at(2)], ['c', at(3)]]), byCertificate('a'));
    deliver(digest('z', [['d', at(4)]]), byCertificate('z'));
    expect(probes.map((p) => p[0])).to.deep.equal(['b', 'c', 'd']);
    expect(m.pending).to.equal(2);
    expect(m.isProven('b')).to.equal(false);
    // 'b' only gave way: it may be introduced again at once.
    deliver(digest('z', [['b', at(2)]]), byCertificate('z'));
    expect(probes.map((p) => p[0])).to.deep.equal(['b', 'c', 'd', 'b']);
  });

  it('without identity, a connection proves its first sender only; a message from a second, unproven id is held back whole', () => {
    const { m, deliver } = setup();
    expect(deliver(digest('first', [['first', at(0)]]), byContact())).to.not.equal(undefined);
    expect(deliver(digest('second', [['second', at(0)], ['x', at(5)]]), { proof: undefined, introducer: 'source:10.0.0.9' })).to.equal(undefined);
    expect(m.heldBack).to.equal(3);
    expect(m.isProven('second')).to.equal(false);
    // Once it has contacted this node on a connection of its own, it may speak on any.
    deliver(digest('second', []), byContact());
    expect(deliver(digest('second', []), { proof: undefined, introducer: 'source:10.0.0.9' })).to.not.equal(undefined);
  });

  it('without identity, lets one source prove idsPerSource ids by contact, and holds back a new one past that', () => {
    const { m, deliver } = setup({ idsPerSource: 2 });
    expect(deliver(digest('one', []), byContact('10.0.0.9'))).to.not.equal(undefined);
    expect(deliver(digest('two', []), byContact('10.0.0.9'))).to.not.equal(undefined);
    expect(deliver(digest('three', [['three', at(3)]]), byContact('10.0.0.9'))).to.equal(undefined);
    expect(m.isProven('three')).to.equal(false);
    expect(m.heldBack).to.equal(2);
    expect(m.refused).to.equal(1);
    // Ids it proved keep speaking; another source has its own budget; a certificate is not charged.
    expect(deliver(digest('one', []), byContact('10.0.0.9'))).to.not.equal(undefined);
    expect(deliver(digest('three', []), byContact('10.0.0.10'))).to.not.equal(undefined);
    expect(deliver(digest('four', []), byCertificate('four'))).to.not.equal(undefined);
  });

  it('holds back a message claiming to come from this node itself', () => {
    const { m, deliver } = setup();
    expect(deliver(digest('me', [['me', OWN]]), byContact())).to.equal(undefined);
    expect(m.heldBack).to.equal(2);
  });

  it('does not probe this node\'s own address, whatever id an entry gives it', () => {
    const { probes, deliver } = setup();
    deliver(digest('a', [['ghost', { host: '10.0.0.1', port: 9742 }]]), byContact());
    expect(probes).to.deep.equal([]);
  });

  it('passes deltas as they are: only their sender can become a peer', () => {
    const { deliver } = setup();
    const message: Message = { sender: { id: 'a' }, deltas: [['unknown', 'k', 1, 1], ['a', 'k', 2, 2]] };
    expect(deliver(message, byContact())).to.equal(message);
  });

  it('waits for its own id before it probes: gossipmonger says it with its first send', () => {
    const ledger = new PeerLedger(Infinity, Infinity);
    const probes: string[] = [];
    const m = new Membership({ enforce: true, pendingPerIntroducer: 4, proofsPerSecond: 4, proofTimeout: 10000, maxPending: 64, idsPerSource: 64 }, ledger, {
      probe: (id) => { probes.push(id); return true; },
      ownAddress: () => OWN
    }, () => 0);
    m.admit(digest('a', [['b', at(2)]]), byContact());
    expect(probes).to.deep.equal([]);
    m.setSelf('me');
    expect(probes).to.deep.equal(['b']);
  });

  it('passes every id when not enforced, and still records proofs', () => {
    const { m, probes, deliver } = setup({ enforce: false });
    const message = digest('a', [['b', at(2)]]);
    expect(deliver(message, byContact())).to.equal(message);
    expect(probes).to.deep.equal([]);
    expect(m.isProven('a')).to.equal(true);
    expect(m.isProven('b')).to.equal(false);
  });

  it('publishes each proof and each refusal on its channel', () => {
    const proven: unknown[] = [];
    const refused: unknown[] = [];
    const onProven = (message: unknown): void => { proven.push(message); };
    const onRefused = (message: unknown): void => { refused.push(message); };
    subscribe('gossipmonger-tls-transport:peer:proven', onProven);
    subscribe('gossipmonger-tls-transport:peer:refused', onRefused);
    try {
      const { m, deliver } = setup({ pendingPerIntroducer: 1 });
      deliver(digest('a', [['b', at(2)], ['c', at(3)], ['d', at(4)]]), byCertificate('a'));
      m.refuse('b', '10.0.1.2', 9742, 'certificate');
      m.proveByCertificate('c', at(3));
      expect(proven).to.deep.equal([
        { id: 'a', proof: 'certificate', direction: 'inbound', host: '10.0.1.0', port: 9742 },
        { id: 'c', proof: 'certificate', direction: 'outbound', host: '10.0.1.3', port: 9742 }
      ]);
      expect(refused).to.deep.equal([
        { id: undefined, introducer: 'id:a', reason: 'share', count: 2 },
        { id: 'b', host: '10.0.1.2', port: 9742, introducer: 'id:a', reason: 'certificate', count: 1 }
      ]);
    } finally {
      unsubscribe('gossipmonger-tls-transport:peer:proven', onProven);
      unsubscribe('gossipmonger-tls-transport:peer:refused', onRefused);
    }
  });
});
