/**
 * The real client: a cluster of gossipmonger@0.1.10 instances, each given this
 * transport, converges in every mode.
 */
import { expect } from 'chai';
import { Gossipmonger, stopGossip, type Monger } from '../scripts/vendor';
import { HOST, closeAll, listening, record, until, type Mode, type TcpTransport } from './helpers';
import type { TransportOptions } from '../src/options';

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
      expect(errors.filter((e) => (e as { code?: string }).code !== 'ECONNRESET')).to.deep.equal([]);
    });
  }
});
