/**
 * Moving a running plaintext cluster (0.1.6 or this transport in plain mode)
 * to TLS without downtime: accept both, send TLS, refuse plaintext; and the
 * deadline that ends the plaintext window on its own.
 */
import { expect } from 'chai';
import { OldTcpTransport as Old, freePort, type OldTransport } from '../../scripts/typed-packages';
import { HOST, closeAll, codeOf, convergeOver, listening, peerAt, record, sleep, tlsFor, track, transport, until, type TcpTransport } from '../support/helpers';

const migrating = (step: 'accept-and-send' | 'accept', peer = 'peer-1', until?: number): ReturnType<typeof tlsFor> =>
  tlsFor('tls', peer, { plaintext: step === 'accept-and-send' ? { accept: true, send: true, until } : { accept: true, until } });

describe('migration from plaintext to TLS (tls.plaintext)', () => {
  const olds: OldTransport[] = [];
  afterEach(async () => {
    await closeAll();
    await Promise.all(olds.splice(0).map((o) => new Promise<void>((resolve) => o.close(resolve))));
  });

  it('step 1: a mixed cluster of 0.1.6 peers and peers that accept both and send plaintext converges', async function () {
    this.timeout(20000);
    const endpoints: Array<{ transport: unknown; port: number }> = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const old = new Old({ host: HOST, port });
      old.on('error', () => {});
      await new Promise<void>((resolve) => old.listen(resolve));
      olds.push(old);
      endpoints.push({ transport: old, port });
    }
    const ours: TcpTransport[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await listening('tls', { tls: migrating('accept-and-send', `peer-${i + 1}`) });
      record(t);
      ours.push(t);
      endpoints.push({ transport: t, port: t.port });
    }
    const n = endpoints.length;
    await convergeOver(endpoints, 100, 'convergence of the mixed cluster');
    const plaintextPeers = ours.reduce((sum, t) => sum + t.stats().plaintext.peers, 0);
    expect(plaintextPeers, 'our peers saw 0.1.6 senders in plaintext').to.be.above(0);
    expect(n).to.equal(5);
  });

  it('step 1: plaintext goes one connection per message, even with keepAlive, so a 0.1.6 receiver reads every frame', async () => {
    const port = await freePort();
    const old = new Old({ host: HOST, port });
    const received: string[] = [];
    old.on('error', () => {});
    old.on('digest', (sender: { id: string }) => received.push(sender.id));
    await new Promise<void>((resolve) => old.listen(resolve));
    olds.push(old);
    for (const keepAlive of [undefined, true]) {
      const sender = track(transport('tls', { ...(keepAlive === undefined ? {} : { keepAlive }), tls: migrating('accept-and-send', 'peer-2') }));
      for (let i = 0; i < 3; i++) sender.digest({ transport: { host: HOST, port } }, { id: `${String(keepAlive)}-${i}` }, []);
      await until(() => received.filter((id) => id.startsWith(String(keepAlive))).length === 3, undefined, `three frames with keepAlive ${String(keepAlive)}`);
      expect(sender.stats().connections.outbound).to.equal(3);
    }
  });

  it('step 2: sends TLS, and still takes plaintext from peers not yet restarted', async () => {
    const receiver = await listening('tls', { tls: migrating('accept') });
    const seen = record(receiver);
    const tlsSender = track(transport('tls', { tls: migrating('accept', 'peer-2') }));
    tlsSender.digest(peerAt(receiver), { id: 'step-2' }, []);
    new Old({ host: HOST, port: 1 }).digest(peerAt(receiver), { id: 'old-peer' }, []);
    await until(() => seen.digests.length === 2);
    const byId = new Map(seen.digests.map((d) => [(d[0] as { id: string }).id, d[2] as { secure: boolean }]));
    expect(byId.get('step-2')!.secure).to.equal(true);
    expect(byId.get('old-peer')!.secure).to.equal(false);
    const stats = receiver.stats().plaintext;
    expect(stats.connections).to.equal(1);
    expect(stats.peers).to.equal(1);
    expect(stats.lastSeen).to.be.a('number');
  });

  it('step 3: refuses plaintext with ERR_PLAINTEXT_REFUSED and no event', async () => {
    const receiver = await listening('tls');
    const seen = record(receiver);
    const old = new Old({ host: HOST, port: 1 });
    old.on('error', () => {});
    old.digest(peerAt(receiver), { id: 'old-peer' }, []);
    await until(() => seen.errors.length === 1);
    expect(codeOf(seen.errors[0])).to.equal('ERR_PLAINTEXT_REFUSED');
    await sleep(20);
    expect(seen.digests).to.have.length(0);
  });

  it('after plaintext.until, refuses plaintext and sends TLS, whatever accept and send say', async () => {
    const deadline = Date.now() + 400;
    const receiver = await listening('tls', { tls: migrating('accept-and-send', 'peer-1', deadline) });
    const seen = record(receiver);
    const sender = track(transport('tls', { tls: migrating('accept-and-send', 'peer-2', deadline) }));
    record(sender);
    const plainSender = track(transport('plain'));
    const plainSeen = record(plainSender);
    plainSender.digest(peerAt(receiver), { id: 'before' }, []);
    sender.digest(peerAt(receiver), { id: 'ours-before' }, []);
    await until(() => seen.digests.length === 2);
    const before = new Map(seen.digests.map((d) => [(d[0] as { id: string }).id, (d[2] as { secure: boolean }).secure]));
    expect(before.get('ours-before'), 'plaintext sent before the deadline').to.equal(false);
    await sleep(Math.max(0, deadline - Date.now()) + 20);
    plainSender.digest(peerAt(receiver), { id: 'after' }, []);
    await until(() => seen.errors.length === 1);
    expect(codeOf(seen.errors[0])).to.equal('ERR_PLAINTEXT_REFUSED');
    // The plaintext sender is told why: the receiver answered with a TLS alert.
    await until(() => plainSeen.errors.length === 1);
    expect(codeOf(plainSeen.errors[0])).to.equal('ERR_PROTOCOL_MISMATCH');
    const outboundBefore = sender.stats().connections.outbound;
    sender.digest(peerAt(receiver), { id: 'ours-after' }, []);
    sender.digest(peerAt(receiver), { id: 'ours-after-2' }, []);
    await until(() => seen.digests.length === 4);
    expect((seen.digests[2]![2] as { secure: boolean }).secure, 'TLS sent after the deadline').to.equal(true);
    // Past the deadline, TLS sends are pooled again (keepAlive's TLS default).
    expect(sender.stats().connections.outbound - outboundBefore).to.equal(1);
    expect(seen.digests.map((d) => (d[0] as { id: string }).id)).to.not.include('after');
  });
});
