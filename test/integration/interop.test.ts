/**
 * Wire compatibility with the transport this one replaces: a real
 * gossipmonger-tcp-transport 0.1.6 sends to us and receives from us.
 */
import { expect } from 'chai';
import { OldTcpTransport as Old, freePort, type OldTransport } from '../../scripts/typed-packages';
import { HOST, closeAll, listening, next, peerAt, record, track, transport, until } from '../support/helpers';

/** 0.1.6 treats port 0 as 9742, so find a free port first and hand it over. */
async function oldListening (): Promise<OldTransport> {
  const port = await freePort();
  const old = new Old({ host: HOST, port });
  await new Promise<void>((resolve) => old.listen(resolve));
  return old;
}

describe('interop with gossipmonger-tcp-transport 0.1.6', () => {
  let old: OldTransport | undefined;
  afterEach(async () => {
    await closeAll();
    if (old) await new Promise<void>((resolve) => old!.close(resolve));
    old = undefined;
  });

  const localPeer = { id: 'peer-x', transport: { host: HOST, port: 1 } };
  const deltas = [['peer-x', 'key', 'välue ✓', 2]];
  const digest = [{ id: 'peer-x', maxVersionSeen: 2, transport: { host: HOST, port: 1 } }];

  it('receives deltas and digest sent by 0.1.6', async () => {
    const receiver = await listening('plain');
    const seen = record(receiver);
    const sender = new Old({ host: HOST, port: 9 });
    sender.on('error', (error) => seen.errors.push(error as Error));
    sender.deltas(peerAt(receiver), localPeer, deltas);
    sender.digest(peerAt(receiver), localPeer, digest);
    await until(() => seen.deltas.length === 1 && seen.digests.length === 1);
    expect(seen.deltas[0]!.slice(0, 2)).to.deep.equal([localPeer, deltas]);
    expect(seen.digests[0]!.slice(0, 2)).to.deep.equal([localPeer, digest]);
    expect(seen.errors).to.deep.equal([]);
  });

  it('sends deltas and digest that 0.1.6 receives', async () => {
    old = await oldListening();
    const target = { id: 'old', transport: { host: HOST, port: old.server!.address().port } };
    const gotDeltas = next<unknown[]>(old, 'deltas');
    const sender = track(transport('plain'));
    const errors = record(sender).errors;
    sender.deltas(target, localPeer, deltas);
    expect(await gotDeltas).to.deep.equal([localPeer, deltas]);
    const gotDigest = next<unknown[]>(old, 'digest');
    sender.digest(target, localPeer, digest);
    expect(await gotDigest).to.deep.equal([localPeer, digest]);
    expect(errors).to.deep.equal([]);
  });

  it('puts exactly the bytes of 0.1.6 on the wire', async () => {
    const { createServer } = await import('node:net');
    const captured: Buffer[] = [];
    const server = createServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('end', () => captured.push(Buffer.concat(chunks)));
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const remote = { transport: { host: HOST, port } };
      new Old({ host: HOST, port: 9 }).deltas(remote, localPeer, deltas);
      await until(() => captured.length === 1);
      track(transport('plain')).deltas(remote, localPeer, deltas);
      await until(() => captured.length === 2);
      expect(captured[1]!.equals(captured[0]!)).to.equal(true);
      expect(captured[1]!.toString()).to.equal(JSON.stringify({ deltas, sender: localPeer }) + '\r\n');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
