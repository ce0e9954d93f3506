/**
 * Shutting down: close() as a promise, nothing dialled or delivered after it
 * (dropped, counted, one ERR_TRANSPORT_CLOSED), and events.once for listen.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { MODES, closeAll, codeOf, listening, peerAt, record, sleep, track, transport, until } from '../support/helpers';

describe('shutting down', () => {
  afterEach(closeAll);

  for (const mode of MODES) {
    describe(`[${mode}]`, () => {
      it('close() without a callback returns a promise that resolves once everything is closed', async () => {
        const t = await listening(mode);
        const closing = t.close();
        expect(closing).to.be.instanceOf(Promise);
        await closing;
        expect(t.server).to.equal(null);
        expect(t.address()).to.equal(null);
        expect(t.stats().connections.open).to.equal(0);
      });

      for (const keepAlive of [false, true]) {
        it(`after close(), dials nothing and drops every send with one ERR_TRANSPORT_CLOSED${keepAlive ? ' (keepAlive)' : ''}`, async () => {
          const receiver = await listening(mode);
          const inbound = record(receiver);
          const sender = await listening(mode, { keepAlive });
          const outbound = record(sender);
          sender.digest(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
          await until(() => inbound.digests.length === 1);
          await sender.close();
          const dialled = sender.stats().connections.outbound;
          for (let i = 0; i < 3; i++) sender.digest(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
          sender.deltas(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
          await sleep(50);
          expect(outbound.errors, 'one error for four dropped sends').to.have.length(1);
          const error = outbound.errors[0] as Error & { remotePort?: number; peerId?: string; framesDropped?: number };
          expect(codeOf(error)).to.equal('ERR_TRANSPORT_CLOSED');
          expect(error).to.include({ remotePort: receiver.port, peerId: 'node-b' });
          expect(sender.stats().errors.ERR_TRANSPORT_CLOSED, 'every drop counted').to.equal(4);
          expect(sender.stats().connections.outbound, 'nothing dialled').to.equal(dialled);
          expect(inbound.digests, 'nothing delivered').to.have.length(1);
          expect(inbound.deltas).to.have.length(0);
        });
      }

      it('sends again after listen() reopens it', async () => {
        const receiver = await listening(mode);
        const inbound = record(receiver);
        const sender = await listening(mode);
        record(sender);
        await sender.close();
        sender.digest(peerAt(receiver), { id: 'dropped' }, []);
        await new Promise<void>((resolve) => sender.listen(resolve));
        sender.digest(peerAt(receiver), { id: 'sent' }, []);
        await until(() => inbound.digests.length === 1);
        expect((inbound.digests[0]![0] as { id: string }).id).to.equal('sent');
      });
    });
  }

  it('works with events.once(transport, \'listening\') and rejects it on a bind failure', async () => {
    const first = await listening('plain');
    const t = track(transport('plain'));
    t.listen();
    await once(t, 'listening');
    expect(t.address()!.port).to.be.above(0);
    const taken = track(transport('plain', { port: first.port }));
    taken.listen();
    const failure = await once(taken, 'listening').then(() => undefined, (error: unknown) => error);
    expect(codeOf(failure)).to.equal('EADDRINUSE');
  });

  it('close() called twice, with and without a callback, settles both', async () => {
    const t = await listening('plain');
    let called = 0;
    t.close(() => { called++; });
    await t.close();
    expect(called).to.equal(1);
  });
});
