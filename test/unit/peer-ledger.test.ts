import { expect } from 'chai';
import type { DigestEntry, Message } from '../../src/wire/message';
import { PeerLedger } from '../../src/inbound/peer-ledger';
import { closeAll, codeOf, listening, rawClient, record, until } from '../support/helpers';

const transport = { host: '10.0.0.1', port: 9742 };
function digest (sender: string, ids: string[], extra: Partial<DigestEntry> = {}): Message {
  return { sender: { id: sender, transport }, digest: ids.map((id) => ({ id, maxVersionSeen: 1, transport, ...extra })) };
}

describe('PeerLedger', () => {
  it('lets known peers through without limit, and new ones up to maxPeers', () => {
    const ledger = new PeerLedger(5, Infinity);
    const first = ledger.admit(digest('a', ['a', 'b', 'c']));
    expect(first.dropped).to.equal(0);
    expect(first.message!.digest).to.have.length(3);
    const second = ledger.admit(digest('a', ['a', 'b', 'c', 'd', 'e', 'f', 'g']));
    expect(second.dropped).to.equal(2);
    expect(second.message!.digest!.map((e) => e.id)).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(ledger.size).to.equal(5);
    expect(ledger.dropped).to.equal(2);
    // Known ids keep passing.
    expect(ledger.admit(digest('e', ['a', 'e'])).dropped).to.equal(0);
  });

  it('drops a whole message whose sender is new past the cap', () => {
    const ledger = new PeerLedger(1, Infinity);
    ledger.admit(digest('a', []));
    const verdict = ledger.admit({ sender: { id: 'stranger' }, deltas: [['a', 'k', 1, 1]] });
    expect(verdict).to.deep.equal({ message: undefined, dropped: 1 });
  });

  it('returns the same message when nothing is dropped (no copy on the common path)', () => {
    const ledger = new PeerLedger(10, Infinity);
    const message = digest('a', ['a', 'b']);
    expect(ledger.admit(message).message).to.equal(message);
  });

  it('keeps what new peers add to a digest under its byte budget, so the node\'s own digest stays sendable', () => {
    const ledger = new PeerLedger(1000000, 64 * 1024);
    const fat = { host: 'h'.repeat(200), port: 1, note: 'x'.repeat(2000) };
    let delivered = 0;
    for (let round = 0; round < 100; round++) {
      const verdict = ledger.admit({ sender: { id: 'attacker', transport }, digest: Array.from({ length: 50 }, (_, i) => ({ id: `fake-${round}-${i}`, maxVersionSeen: 1, transport: fat })) });
      delivered += verdict.message?.digest?.length ?? 0;
    }
    const own = JSON.stringify(Array.from({ length: delivered }, (_, i) => ({ id: `fake-x-${i}`, maxVersionSeen: Number.MAX_SAFE_INTEGER, transport: fat })));
    expect(Buffer.byteLength(own)).to.be.at.most(64 * 1024);
    expect(delivered).to.be.above(0);
    expect(ledger.dropped).to.equal(100 * 50 - delivered);
  });

  it('has no budget at all when maxPeers is Infinity', () => {
    const ledger = new PeerLedger(Infinity, 10);
    expect(ledger.admit(digest('a', ['x'.repeat(1000)])).dropped).to.equal(0);
    // Still remembered (membership asks whether gossipmonger knows an id), never refused.
    expect(ledger.has('x'.repeat(1000))).to.equal(true);
  });
});

describe('maxPeers in the transport', () => {
  afterEach(closeAll);

  it('keeps the digest entries of the peers it passes on within half of maxFrameSize, so the node\'s own digest stays sendable', async () => {
    const maxFrameSize = 64 * 1024;
    // membership off: this is the budget on its own. With membership on, ids nobody proved never reach it (membership.test.ts).
    const receiver = await listening('plain', { maxFrameSize, membership: false });
    const seen = record(receiver);
    // Entries as large as the schema allows: 256-character ids, 253-character hosts, four 64-character extras.
    const extras = Object.fromEntries([1, 2, 3, 4].map((k) => [`x${k}`, 'e'.repeat(64)]));
    for (let frame = 0; frame < 6; frame++) {
      const digest = Array.from({ length: 30 }, (_, i) => ({ id: `${frame}-${i}-`.padEnd(256, 'i'), maxVersionSeen: 1, transport: { host: 'h'.repeat(253), port: 1, ...extras } }));
      const socket = await rawClient('plain', receiver.port);
      socket.end(JSON.stringify({ digest, sender: { id: 'fat' } }) + '\n');
      await until(() => seen.digests.length === frame + 1);
    }
    const passed = seen.digests.flatMap(([, digest]) => digest as DigestEntry[]);
    const own = JSON.stringify(passed.map((e) => ({ ...e, maxVersionSeen: Number.MAX_SAFE_INTEGER })));
    expect(Buffer.byteLength(own)).to.be.at.most(maxFrameSize / 2);
    expect(passed.length, 'some passed').to.be.above(10);
    expect(receiver.stats().peers.dropped).to.equal(6 * 30 - passed.length);
    expect(seen.errors.map(codeOf)).to.deep.equal(['ERR_PEER_LIMIT']);
  });
});
