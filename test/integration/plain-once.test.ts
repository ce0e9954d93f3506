/**
 * src/outbound/plain-once.ts: one plaintext connection per message, the
 * 0.1.6 wire (connect, write the frame, end, wait for the remote to close).
 * Every failure says how many frames it concerns (dropped before any byte
 * was written, or written and then lost, or maybe lost); a TLS listener's
 * alert in answer to our plaintext is recognised. The steps' deadlines are
 * in test/integration/transport.suite.ts ("gives up with ERR_CONNECT_TIMEOUT
 * on a remote that accepts and never answers") and outbound.test.ts ("a
 * receiver that trickles bytes back").
 */
import { expect } from 'chai';
import { createServer, type AddressInfo } from 'node:net';
import { FaultProxy } from '../support/fault-proxy';
import { Ledger, type ReportedError } from '../system/chaos/ledger';
import { HOST, closeAll, codeOf, listening, peerAt, record, sleep, track, transport, until } from '../support/helpers';

interface RemoteError extends Error {
  code?: string;
  remoteAddress?: string;
  remotePort?: number;
  peerId?: string;
}

describe('frame counts on send failures [per message]', () => {
  afterEach(closeAll);

  it('reports framesDropped: 1 when the connection cannot be opened', async () => {
    // A port that was just free: connecting is refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, HOST, resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const sender = track(transport('plain'));
    const errors = record(sender).errors;
    sender.digest({ transport: { host: HOST, port } }, { id: 'refused' }, []);
    await until(() => errors.length === 1);
    expect(codeOf(errors[0])).to.equal('ECONNREFUSED');
    expect(errors[0]).to.include({ framesDropped: 1 });
    expect(errors[0]).to.not.have.property('framesWritten');
  });

  it('reports framesWritten: 1 when the connection is reset mid-frame, and the ledger balances', async () => {
    const receiver = await listening('plain');
    const seen = record(receiver);
    const proxy = new FaultProxy({ host: HOST, port: receiver.port });
    await proxy.listen(HOST);
    try {
      // Every connection is cut 20 bytes into its frame.
      proxy.set({ resetAtByte: 20 });
      const sender = track(transport('plain'));
      const errors = record(sender).errors;
      const n = 10;
      for (let i = 0; i < n; i++) sender.digest({ transport: { host: HOST, port: proxy.port } }, { id: 'cut' }, [{ id: 'cut', maxVersionSeen: i }]);
      await until(() => errors.length === n, 5000, `${n} errors`);
      await sleep(50);
      expect(seen.digests).to.have.length(0);
      for (const error of errors) {
        expect(['ECONNRESET', 'EPIPE']).to.include(codeOf(error));
        expect(error).to.have.property('framesWritten', 1);
        expect((error as { framesLost?: number }).framesLost).to.be.oneOf([0, 1]);
        expect(error).to.include({ remotePort: proxy.port });
      }
      const ledger = new Ledger();
      ledger.sent('cut', 'receiver', n);
      ledger.delivered('cut', 'receiver', seen.digests.length);
      for (const error of errors) ledger.reported('cut', 'receiver', error as ReportedError);
      expect(ledger.totals().unbalanced).to.deep.equal([]);
      expect(ledger.totals().uncounted).to.equal(0);
    } finally {
      await proxy.close();
    }
  });
});

describe('per message: a TLS listener answering our plaintext', () => {
  afterEach(closeAll);

  it("the plain sender gets ERR_PROTOCOL_MISMATCH from a TLS receiver's alert; the receiver ERR_PLAINTEXT_REFUSED", async () => {
    const receiver = await listening('tls');
    const inbound = record(receiver);
    const sender = track(transport('plain', { keepAlive: false }));
    const outbound = record(sender);
    sender.digest(peerAt(receiver, 'node-b'), { id: 'node-a' }, []);
    await until(() => inbound.errors.length === 1 && outbound.errors.length === 1);
    expect(codeOf(inbound.errors[0])).to.equal('ERR_PLAINTEXT_REFUSED');
    const failed = outbound.errors[0] as RemoteError;
    expect(failed.code).to.equal('ERR_PROTOCOL_MISMATCH');
    expect(failed.message).to.match(/speaks TLS/);
    expect(failed).to.include({ remoteAddress: HOST, remotePort: receiver.port, peerId: 'node-b' });
    // The one frame written was refused: certainly lost, and said so.
    expect(failed).to.include({ framesWritten: 1, framesLost: 1 });
    expect(inbound.digests).to.have.length(0);
  });
});
