/**
 * The real client: a cluster of gossipmonger@0.1.10 instances, each given this
 * transport, converges in every mode.
 */
import { expect } from 'chai';
import { Gossipmonger, stopGossip, type Monger } from '../../scripts/typed-packages';
import { HOST, closeAll, codeOf, listening, peerAt, record, track, transport, until, type Mode, type TcpTransport } from '../support/helpers';
import type { TransportOptions } from '../../src/options';

/** Starts `n` peers; peer i seeds from peer 0. Returns them and a convergence probe. */
async function cluster (mode: Mode, n: number, options: TransportOptions = {}, interval = 100): Promise<{ peers: Monger[]; converged: () => number; errors: Error[] }> {
  const errors: Error[] = [];
  const transports: TcpTransport[] = [];
  for (let i = 0; i < n; i++) {
    const t = await listening(mode, options, `peer-${(i % 5) + 1}`);
    transports.push(t);
  }
  const peers = transports.map((t, i) => {
    const peer = new Gossipmonger({ id: `peer-${i}`, transport: { host: HOST, port: t.port } }, {
      transport: t,
      GOSSIP_INTERVAL: interval,
      seeds: i === 0 ? [] : [{ id: 'peer-0', transport: { host: HOST, port: transports[0]!.port } }]
    });
    peer.on('error', (error: Error) => errors.push(error));
    record(t);
    peer.update(`key-${i}`, `value-${i}`);
    return peer;
  });
  for (const peer of peers) peer.gossip();
  const converged = (): number => {
    let seen = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const view = peers[i]!.storage.get(`peer-${j}`);
        if (view?.data[`key-${j}`]?.[0] === `value-${j}`) seen++;
      }
    }
    return seen;
  };
  return { peers, converged, errors };
}

describe('gossipmonger@0.1.10 over this transport', () => {
  afterEach(closeAll);

  it('survives the hostile digests that crash gossipmonger over 0.1.6', async () => {
    // Over 0.1.6 each of these reaches gossipmonger's handlers, which then throw
    // on a later message ("Cannot read properties of null", "intervals.push is
    // not a function", "markContact is not a function"); here they are refused.
    const t = await listening('plain');
    const seen = record(t);
    const peer = new Gossipmonger({ id: 'me', transport: { host: HOST, port: t.port } }, { transport: t });
    const crashes: Error[] = [];
    peer.on('error', () => {});
    const frames = [
      { digest: [{ id: 'victim', maxVersionSeen: 5, data: { k: null } }], sender: { id: 'evil' } },
      { digest: [{ id: 'v2', maxVersionSeen: 1, intervals: 'abc' }], sender: { id: 'evil' } },
      { digest: [], sender: { id: 'constructor' } },
      { deltas: [['toString', 'k', 1, 1]], sender: { id: 'evil' } },
      { digest: 'not-an-array', sender: { id: 'evil' } },
      null
    ];
    for (const frame of frames) {
      const sender = track(transport('plain'));
      sender.on('error', (error) => crashes.push(error));
      sender.rpc(peerAt(t), JSON.stringify(frame));
    }
    await until(() => seen.errors.length === frames.length);
    expect(seen.errors.map(codeOf)).to.deep.equal(frames.map(() => 'ERR_INVALID_MESSAGE'));
    // What follows in the 0.1.6 crash sequences is delivered and handled without a throw.
    const follow = track(transport('plain'));
    follow.deltas(peerAt(t), { id: 'evil' }, [['victim', 'x', 1, 1]]);
    follow.digest(peerAt(t), { id: 'v2' }, [{ id: 'victim', maxVersionSeen: 0 }]);
    await until(() => seen.deltas.length === 1 && seen.digests.length === 1);
    expect(crashes).to.deep.equal([]);
    stopGossip([peer]);
  });

  const runs: Array<[Mode, TransportOptions, string]> = [
    ['plain', {}, 'per message'],
    ['tls', {}, 'per message'],
    ['mtls', {}, 'per message'],
    ['mtls', { keepAlive: true }, 'keepAlive']
  ];
  for (const [mode, options, how] of runs) {
    it(`converges with 5 peers in ${mode} mode, ${how}`, async function () {
      this.timeout(20000);
      const n = 5;
      const { peers, converged, errors } = await cluster(mode, n, options);
      try {
        await until(() => converged() === n * (n - 1), 15000, 'convergence');
      } finally {
        stopGossip(peers);
      }
      expect(errors.filter((e) => codeOf(e) !== 'ECONNRESET')).to.deep.equal([]);
    });
  }
});
