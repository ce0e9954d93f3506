/**
 * Shutting down: close() as a promise, nothing dialled or delivered after it
 * (dropped, counted, one ERR_TRANSPORT_CLOSED), and events.once for listen.
 */
import { expect } from 'chai';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
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

  describe('a clean stop is quiet for the others', () => {
    // A pooled sender streams frames to a receiver that stops with close().
    // The receiver ends its side and takes what is already on its way; the
    // sender stops writing on that connection when it sees the end. So no
    // frame is in doubt: each one was delivered, or refused at connect
    // (ECONNREFUSED, framesDropped) once the receiver had stopped listening.
    for (const mode of MODES) {
      it(`[${mode}, keepAlive] no connection error, and every frame delivered or dropped at connect`, async () => {
        const receiver = await listening(mode);
        const inbound = record(receiver);
        const sender = await listening(mode, { keepAlive: true });
        const outbound = record(sender);
        let sent = 0;
        let pumping = true;
        const pump = (): void => {
          if (!pumping) return;
          sender.deltas(peerAt(receiver, 'node-b'), { id: 'node-a' }, [['node-a', 'k', sent, sent]]);
          sent++;
          setImmediate(pump);
        };
        pump();
        await until(() => inbound.deltas.length >= 50, 5000, '50 frames delivered');
        await receiver.close();
        pumping = false;
        await sender.close();
        const codes = outbound.errors.map(codeOf);
        expect(codes.filter((code) => code !== 'ECONNREFUSED'), 'only connects refused once the receiver stopped').to.deep.equal([]);
        const frames = outbound.errors as Array<Error & { framesDropped?: number; framesWritten?: number }>;
        expect(frames.map((e) => e.framesWritten ?? 0).reduce((a, b) => a + b, 0), 'no frame in doubt').to.equal(0);
        const dropped = frames.map((e) => e.framesDropped ?? 0).reduce((a, b) => a + b, 0);
        expect(inbound.deltas.length + dropped, 'delivered + dropped = sent').to.equal(sent);
      });
    }
  });

  describe('a clean stop while a connection to it is being opened', () => {
    // The receiver closes as it admits the sender's connection, before any
    // byte: the TLS handshake completes, then the receiver ends its side, and
    // the frame waiting for that connection is still taken. Cut instead, a
    // TLS 1.3 sender (which finishes its handshake first) took the close for
    // a refusal of its certificate (ERR_TLS_REFUSED).
    for (const mode of ['tls', 'mtls'] as const) {
      it(`[${mode}] the handshake completes, the frame is delivered, and the sender reports nothing`, async () => {
        const receiver = await listening(mode);
        const inbound = record(receiver);
        const sender = await listening(mode);
        const outbound = record(sender);
        let closing: Promise<void> | undefined;
        const onAccepted = (): void => { closing ??= receiver.close(); };
        subscribe('gossipmonger-tls-transport:inbound:accepted', onAccepted);
        try {
          sender.digest(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
          await until(() => closing !== undefined, 3000, 'the receiver closing at accept');
          await closing;
        } finally {
          unsubscribe('gossipmonger-tls-transport:inbound:accepted', onAccepted);
        }
        await sender.close();
        expect(outbound.errors.map(codeOf)).to.deep.equal([]);
        expect(inbound.digests).to.have.length(1);
      });
    }
  });

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
