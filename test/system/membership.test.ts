/**
 * Proven membership against the attacks that isolated a node, with real
 * gossipmonger@0.1.10 nodes in this process and every attacker in a process
 * of its own (bench/attacker.ts from 127.0.0.2; bench/squatter.ts, a member
 * with a valid certificate). The scenarios are bench/membership.ts's, which
 * also runs them against an older build for before/after figures
 * (`node dist/bench/membership.js --before DIR`).
 *
 * Deadlines count the victim's own gossip rounds (gossipmonger's
 * 'digest send'), not wall-clock time: each round the victim gossips with
 * one live peer picked at random, so "within N rounds" fails by chance with
 * the probability given next to each bound, and never because the machine
 * is slow.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import TcpTransport = require('../../src/index');
import { contactFlood, isolation, joining, squatting, type TransportClass } from '../../bench/membership';
import { generateCerts } from '../../scripts/generate-certs';
import { DEFAULTS } from '../../src/options';

const LIB = join(__dirname, '..', '..', 'src', 'index.js');
const Transport = TcpTransport as unknown as TransportClass;

function report (what: string, figures: unknown): void {
  if (process.env.REPORT_ATTACKS) console.log(`      ${what}: ${JSON.stringify(figures)}`);
}

const label = (mode: string): string => mode === 'mtls' ? 'mtls + sender-id' : mode;

describe('proven membership (attackers in their own processes, real gossipmonger nodes)', function () {
  this.timeout(60000);

  for (const mode of ['plain', 'tls', 'mtls'] as const) {
    it(`[${label(mode)}] one digest naming 2,045 fake peers does not isolate the victim: the honest peer's next update arrives within a few rounds, and a new member joining through the victim is admitted`, async () => {
      // The victim knows two live peers after the attack (the honest one and
      // the attacker's own id), so each round reaches the honest peer with
      // probability 1/2: 30 rounds fail by chance with p < 1e-9. The new member
      // is reached 1 round in 3 (p < 1e-6 over 40). Before: 0 digests of 101
      // to the honest peer, and the member refused (ERR_PEER_LIMIT).
      const r = await isolation(Transport, mode, { interval: 50, rounds: 40 });
      report(`isolation [${label(mode)}]`, r);
      expect(r.updateRounds, 'victim rounds until the honest update arrived').to.be.a('number').and.at.most(30);
      expect(r.joinRounds, 'victim rounds until the new member was admitted').to.be.a('number');
      // gossipmonger holds the honest peer, the attacker itself and the new member; no fake.
      expect(r.victimPeers).to.equal(3);
      expect(r.victimStats.heldBack, 'fake entries held back').to.be.at.least(2045);
      expect(r.victimStats.refused, 'fake entries turned away or refused').to.be.at.least(2045 - DEFAULTS.membershipPendingPerIntroducer);
      // The only proof attempts are the attacker's share: the digest cannot make the victim dial 2,045 addresses.
      expect(r.victimStats.probes, 'probes the attack caused').to.be.at.most(DEFAULTS.membershipPendingPerIntroducer);
      expect(r.victimErrors.ERR_PEER_LIMIT ?? 0).to.equal(0);
    });
  }

  it('[plain] one address making a connection per made-up id adds at most membership.idsPerSource of them to gossipmonger', async () => {
    // Without identity each connection proves its first sender: the attacker (127.0.0.2, its own
    // process) opens one per made-up id for 2 s, as fast as the victim admits them. Before the
    // per-source budget, 5 s of this filled maxPeers from one address (2,047 peers).
    const r = await contactFlood(Transport, { sources: ['127.0.0.2'], seconds: 2, interval: 50, rounds: 1 });
    report('contact flood [plain]', r);
    expect(r.attacker?.frames ?? 0, 'made-up ids the attacker sent').to.be.above(DEFAULTS.membershipIdsPerSource);
    // The honest peer and at most idsPerSource made-up ones.
    expect(r.victimPeers).to.be.at.most(DEFAULTS.membershipIdsPerSource + 1);
  });

  for (const order of ['squatter-first', 'member-first'] as const) {
    it(`[mtls + sender-id] id squatting, ${order === 'squatter-first' ? 'the squatter announcing first' : 'the real member known first'}: the real member receives the victim's gossip`, async () => {
      // The real peer-2 joins through another member; from then on the victim
      // gossips with 3 or 4 live peers a round, so it reaches peer-2 within 40
      // of its rounds but by chance (p < 1e-5). The deadline below is only a
      // bound on the test: it ends as soon as 3 digests arrived.
      const r = await squatting(Transport, LIB, order, { interval: 50, window: 30000, enough: 3 });
      report(`squatting [${order}]`, r);
      expect(r.fromVictim, "the victim's digests the real peer-2 received").to.be.at.least(3);
      expect(r.victimAddressOfReal, "the address the victim's gossipmonger holds for peer-2").to.equal('real');
    });
  }

  describe('joining', function () {
    this.timeout(150000);
    // Certificates for peer-1 .. peer-50, written once (the test set has five).
    before(async () => { await generateCerts({ peers: 50 }); });

    for (const mode of ['plain', 'tls', 'mtls'] as const) {
      it(`[${label(mode)}] a 50-peer cluster whose members join one by one through one seed converges: every peer knows every other`, async () => {
        // Issue 21: the per-source limits (maxConnectionsPerSource, connectionsPerSecondPerSource)
        // are lifted here: every peer connects from 127.0.0.1, where each would have an address
        // of its own in a real cluster. With issue 21's defaults this cluster still converged
        // slowly on the loaded development machine (plain: 343 ERR_CONNECT_TIMEOUT where lifted
        // limits gave none; mutual TLS + sender-id: not every peer known in 120 s, against 10-28 s
        // lifted), with no refusal counted in stats().refusals: a finding for issue 21.
        const r = await joining(Transport, mode, {
          peers: 50,
          interval: 50,
          every: 50,
          limit: 120000,
          membershipOnly: true,
          extra: { maxConnectionsPerSource: Infinity, connectionsPerSecondPerSource: Infinity }
        });
        report(`joining [${label(mode)}]`, r);
        expect(r.knownMs, 'every peer known by every other').to.be.a('number');
      });
    }
  });
});
