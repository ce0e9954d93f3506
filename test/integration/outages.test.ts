/**
 * A destination that is down is reported once per outage, not once per send
 * (src/outbound/outages.ts): the first failure at once, the rest counted in
 * stats().errors and reported together, with their frames, when the
 * destination answers again or the transport closes.
 */
import { expect } from 'chai';
import { freePort } from '../../scripts/typed-packages';
import { HOST, closeAll, codeOf, listening, next, record, until, type Mode } from '../support/helpers';

type Reported = Error & { count?: number; framesDropped?: number; remotePort?: number; peerId?: string };

const sum = (errors: Reported[], key: 'framesDropped' | 'count'): number => errors.reduce((n, e) => n + (e[key] ?? 0), 0);

describe('outages', () => {
  afterEach(closeAll);

  for (const mode of ['plain', 'tls'] as Mode[]) {
    it(`[${mode}] a destination that is down: one ECONNREFUSED at once, every failure counted, the rest reported on close() with their frames`, async () => {
      const sender = await listening(mode);
      const seen = record(sender);
      const port = await freePort();
      const seed = { id: 'seed', transport: { host: HOST, port } };
      const sends = 20;
      // One send at a time, as gossip rounds would: each waits for the previous one's failure to be counted.
      for (let i = 0; i < sends; i++) {
        const before = sender.stats().errors.ECONNREFUSED ?? 0;
        sender.digest(seed, { id: 'lone' }, []);
        await until(() => (sender.stats().errors.ECONNREFUSED ?? 0) > before, 3000, `failure ${i + 1}`);
      }
      const errors = seen.errors as Reported[];
      expect(errors.map(codeOf), 'one report for 20 failures').to.deep.equal(['ECONNREFUSED']);
      expect(errors[0]).to.include({ count: 1, framesDropped: 1, remotePort: port, peerId: 'seed' });
      expect(sender.stats().errors.ECONNREFUSED, 'every failure counted').to.equal(sends);
      await sender.close();
      expect(errors.map(codeOf)).to.deep.equal(['ECONNREFUSED', 'ECONNREFUSED']);
      expect(errors[1]!.count, 'the held failures').to.equal(sends - 1);
      expect(errors[1]!.message).to.match(/19 time\(s\)/);
      expect(sum(errors, 'framesDropped'), 'every frame accounted for').to.equal(sends);
    });
  }

  it('[plain] reports the held failures when the destination answers again, and the next outage at once', async () => {
    const sender = await listening('plain');
    const seen = record(sender);
    const port = await freePort();
    const seed = { id: 'seed', transport: { host: HOST, port } };
    for (let i = 0; i < 3; i++) {
      sender.digest(seed, { id: 'lone' }, []);
      await until(() => sender.stats().errors.ECONNREFUSED === i + 1, 3000, `failure ${i + 1}`);
    }
    expect(seen.errors).to.have.length(1);
    const back = await listening('plain', { port });
    const held = next<[Reported]>(sender, 'error', 5000);
    sender.digest(seed, { id: 'lone' }, []);
    const [summary] = await held;
    expect(summary).to.include({ count: 2, framesDropped: 2, remotePort: port });
    expect(summary.message).to.match(/answers again/);
    await back.close();
    sender.digest(seed, { id: 'lone' }, []);
    await until(() => seen.errors.length === 3, 3000, 'the next outage reported');
    expect((seen.errors[2] as Reported).count, 'a new outage, at once').to.equal(1);
  });
});
