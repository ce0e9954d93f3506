/**
 * Moving a running plaintext cluster (0.1.6 or this transport in plain mode)
 * to TLS without downtime: accept both, send TLS, refuse plaintext; and the
 * deadline that ends the plaintext window on its own.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gossipmonger, OldTcpTransport as Old, freePort, type Monger, type OldTransport } from '../../scripts/typed-packages';
import type { TransportOptions } from '../../src/options';
import { HOST, ca, closeAll, codeOf, convergeOver, listening, peerAt, pem, record, sleep, tlsFor, track, transport, until, type TcpTransport } from '../support/helpers';

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
    // A transport that never accepted plaintext says so, not that it stopped.
    expect(seen.errors[0]!.message).to.match(/speaks TLS only/).and.not.match(/no longer/);
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
    expect(seen.errors[0]!.message).to.match(/tls\.plaintext\.until has passed, this transport no longer accepts plaintext/);
    // The plaintext sender is told why: the receiver answered with a TLS alert.
    await until(() => plainSeen.errors.length === 1);
    expect(codeOf(plainSeen.errors[0])).to.equal('ERR_PROTOCOL_MISMATCH');
    const outboundBefore = sender.stats().connections.outbound;
    // Two frames from one peer on the pooled connection (a connection speaks for one id).
    sender.digest(peerAt(receiver), { id: 'ours-after' }, []);
    sender.digest(peerAt(receiver), { id: 'ours-after' }, [{ id: 'ours-after', maxVersionSeen: 1 }]);
    await until(() => seen.digests.length === 4);
    expect((seen.digests[2]![2] as { secure: boolean }).secure, 'TLS sent after the deadline').to.equal(true);
    // Past the deadline, TLS sends are pooled again (keepAlive's TLS default).
    expect(sender.stats().connections.outbound - outboundBefore).to.equal(1);
    expect(seen.digests.map((d) => (d[0] as { id: string }).id)).to.not.include('after');
  });
});

describe('the documented procedure (docs/operations.md, "Migrating a running cluster to TLS")', () => {
  afterEach(closeAll);

  /** The doc's block of options and the step-3 condition, evaluated as written with one node's material. */
  function procedure (material: { key: string; cert: string; ca: string }): {
    step1: TransportOptions['tls']; step2: TransportOptions['tls']; step3: TransportOptions['tls'];
    quiet: (transport: TcpTransport, period?: number) => boolean;
  } {
    const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'operations.md'), 'utf8');
    const block = [...doc.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!).find((code) => code.startsWith('// Migration to TLS'));
    if (block === undefined) throw new Error('docs/operations.md has no migration block');
    return new Function('key', 'cert', 'ca', `${block}\nreturn { step1, step2, step3, quiet };`)(material.key, material.cert, material.ca) as ReturnType<typeof procedure>;
  }

  it('moves a gossiping plain cluster to TLS in three rolling restarts; step 3 waits for quiet() on every node, which plaintext.peers cannot say', async function () {
    this.timeout(30000);
    const interval = 40;
    // The quiet period, in gossip rounds as the doc counts it (60 rounds of 1 s there).
    const period = 10 * interval;
    const ids = ['peer-1', 'peer-2', 'peer-3'];
    const ports = [await freePort(), await freePort(), await freePort()];
    const errors: string[] = [];
    /** Set while a node stops and starts again. */
    let restarting = false;
    interface Node { transport: TcpTransport; gossip: Monger }
    const nodes: Node[] = [];
    let version = 0;

    /** Starts node i with `tls` (plain when undefined), publishing `step`. */
    const start = async (i: number, tls: TransportOptions['tls'], step: string): Promise<void> => {
      const t = await listening('plain', { port: ports[i]!, ...(tls === undefined ? {} : { tls }) });
      t.on('error', (error) => {
        const code = codeOf(error) ?? error.message;
        // A plaintext message goes one connection per message: one dialled the instant a node
        // stops can be in its accept queue when the listener closes, and is reset (one frame in doubt).
        // Reset before it connected, the frame was never written: reported dropped (framesDropped 1).
        const counts = error as { framesWritten?: number; framesDropped?: number };
        const inDoubt = restarting && (code === 'ECONNRESET' || code === 'EPIPE') && (counts.framesWritten === 1 || counts.framesDropped === 1);
        if (!inDoubt) errors.push(`${ids[i]}: ${code}`);
      });
      // A restarted peer's clock must not go back (see "Stopping a node").
      const gossip = new Gossipmonger({ id: ids[i]!, transport: { host: HOST, port: ports[i]! }, maxVersionSeen: Date.now() * 1000 + version++ }, {
        transport: t,
        GOSSIP_INTERVAL: interval,
        seeds: [{ id: ids[i === 0 ? 1 : 0]!, transport: { host: HOST, port: ports[i === 0 ? 1 : 0]! } }]
      }) as Monger;
      gossip.on('error', () => {});
      gossip.update('step', step);
      gossip.gossip();
      nodes[i] = { transport: t, gossip };
    };
    const converged = (i: number, step: string): Promise<void> => until(() => nodes.every((node, j) => j === i || node.gossip.storage.get(ids[i]!)?.data.step?.[0] === step), 10000, `${ids[i]}'s ${step} everywhere`);
    const restart = async (i: number, tls: TransportOptions['tls'], step: string): Promise<void> => {
      restarting = true;
      nodes[i]!.gossip.stop();
      await nodes[i]!.transport.close();
      await start(i, tls, step);
      await converged(i, step);
      restarting = false;
    };

    for (let i = 0; i < 3; i++) await start(i, undefined, 'plain');
    for (let i = 0; i < 3; i++) await converged(i, 'plain');
    const steps = ids.map((id) => procedure({ ...pem(id), ca: ca() }));
    for (let i = 0; i < 3; i++) await restart(i, steps[i]!.step1, 'step 1');
    for (let i = 0; i < 3; i++) {
      if (i === 2) {
        // The last node is still on step 1 and sends plaintext every round: not quiet.
        await sleep(period);
        expect(nodes.some((node) => !steps[0]!.quiet(node.transport, period)), 'quiet while a node still sends plaintext').to.equal(true);
      }
      await restart(i, steps[i]!.step2, 'step 2');
    }
    // After step 2 nobody sends plaintext: quiet on every node within the period (and some rounds).
    await until(() => nodes.every((node) => steps[0]!.quiet(node.transport, period)), period + 20 * interval, 'quiet() on every node');
    expect(nodes.reduce((n, node) => n + node.transport.stats().plaintext.peers, 0), 'plaintext.peers still counts what it once saw').to.be.above(0);
    for (let i = 0; i < 3; i++) await restart(i, steps[i]!.step3, 'step 3');
    for (const node of nodes) node.gossip.stop();
    // Restarting nodes are reported down (ECONNREFUSED); nothing was refused or lost otherwise.
    expect(errors.filter((line) => !line.endsWith(': ECONNREFUSED'))).to.deep.equal([]);
  });
});
