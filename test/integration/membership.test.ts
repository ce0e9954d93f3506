/**
 * Proven membership through the transport: what a digest naming an id this
 * node has no proof of delivers, the probe that tries to prove it, the
 * certificate or contact that does, and what bounds the probes.
 */
import { expect } from 'chai';
import { fork } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Gossipmonger, stopGossip, type Monger } from '../../scripts/typed-packages';
import { HOST, closeAll, codeOf, listening, rawClient, record, tlsFor, track, transport, until } from '../support/helpers';

/** A port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP server on `host` that counts connections and holds them (it never closes its side). */
async function sink (host: string): Promise<{ port: number; total: () => number; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let total = 0;
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    total++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as { port: number }).port,
    total: () => total,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  };
}

const ids = (digest: unknown): string[] => (digest as Array<{ id: string }>).map((e) => e.id);

describe('membership through the transport', () => {
  afterEach(closeAll);

  it('[plain] holds back an id it has no proof of, probes it, and passes it on once the id has answered', async () => {
    const events: Array<[string, unknown]> = [];
    const onProven = (m: unknown): void => { events.push(['proven', m]); };
    const onRefused = (m: unknown): void => { events.push(['refused', m]); };
    subscribe('gossipmonger-tls-transport:peer:proven', onProven);
    subscribe('gossipmonger-tls-transport:peer:refused', onRefused);
    try {
      const node = await listening('plain');
      const seen = record(node);
      const newcomer = await listening('plain');
      record(newcomer);
      // gossipmonger tells its transport who it is with its first send (its first round).
      newcomer.digest({ id: 'nobody', transport: { host: HOST, port: await closedPort() } }, { id: 'newcomer', transport: { host: HOST, port: newcomer.port } }, []);
      // The newcomer answers a probe as a gossipmonger peer does: with its own deltas.
      newcomer.on('digest', (from, digest) => {
        if (digest.some((e) => e.id === 'newcomer')) newcomer.deltas(from, { id: 'newcomer', transport: { host: HOST, port: newcomer.port } }, [['newcomer', 'k', 'v', 1]]);
      });
      const introducer = track(transport('plain'));
      const entries = [{ id: 'introducer', maxVersionSeen: 1 }, { id: 'newcomer', maxVersionSeen: 1, transport: { host: HOST, port: newcomer.port } }];
      // The node learns who it is from its first send (gossipmonger sends every round).
      node.digest({ id: 'introducer', transport: { host: HOST, port: await closedPort() } }, { id: 'node', transport: { host: HOST, port: node.port } }, []);
      introducer.digest({ transport: { host: HOST, port: node.port } }, { id: 'introducer', transport: { host: HOST, port: 1 } }, entries);
      await until(() => seen.digests.length === 1);
      expect(ids(seen.digests[0]![1])).to.deep.equal(['introducer']);
      // The probe reached the newcomer, whose answer proves it by contact and passes it on.
      await until(() => seen.deltas.length === 1, 3000, "the newcomer's answer");
      expect((seen.deltas[0]![0] as { id: string }).id).to.equal('newcomer');
      introducer.digest({ transport: { host: HOST, port: node.port } }, { id: 'introducer', transport: { host: HOST, port: 1 } }, entries);
      await until(() => seen.digests.length === 2);
      expect(ids(seen.digests[1]![1])).to.deep.equal(['introducer', 'newcomer']);
      expect(node.stats().peers).to.include({ proven: 2, pending: 0, heldBack: 1, probes: 1 });
      expect(events.filter(([kind]) => kind === 'proven').map(([, m]) => (m as { id: string }).id)).to.include.members(['introducer', 'newcomer']);
    } finally {
      unsubscribe('gossipmonger-tls-transport:peer:proven', onProven);
      unsubscribe('gossipmonger-tls-transport:peer:refused', onRefused);
    }
  });

  it('[plain] refuses an id whose probe cannot be delivered, and counts it', async () => {
    const node = await listening('plain');
    const seen = record(node);
    node.digest({ id: 'x', transport: { host: HOST, port: await closedPort() } }, { id: 'node', transport: { host: HOST, port: node.port } }, []);
    const socket = await rawClient('plain', node.port);
    socket.end(JSON.stringify({ digest: [{ id: 'ghost', maxVersionSeen: 1, transport: { host: HOST, port: await closedPort() } }], sender: { id: 'liar' } }) + '\n');
    await until(() => node.stats().peers.refused === 1, 3000, 'the probe refused');
    expect(node.stats().peers).to.include({ pending: 0, heldBack: 1, probes: 1 });
    expect(ids(seen.digests[0]![1])).to.deep.equal([]);
    // The probe's failure is a send's failure like any other.
    expect(seen.errors.map(codeOf)).to.include('ECONNREFUSED');
  });

  it('[mtls + sender-id] proves an id by the certificate of the connection its probe opened, and gives no id to an address presenting another\'s', async () => {
    const sid = { authorize: 'sender-id' as const };
    const node = await listening('mtls', { tls: { ...tlsOf('peer-1'), ...sid } });
    const seen = record(node);
    const real = await listening('mtls', { tls: { ...tlsOf('peer-2'), ...sid } });
    const squatter = await listening('mtls', { tls: { ...tlsOf('peer-3'), ...sid } });
    record(real);
    record(squatter);
    const member = track(transport('mtls', { tls: { ...tlsOf('peer-4'), ...sid } }));
    node.digest({ id: 'peer-4', transport: { host: HOST, port: await closedPort() } }, { id: 'peer-1', transport: { host: HOST, port: node.port } }, []);
    const from = { id: 'peer-4', transport: { host: HOST, port: 1 } };
    const at = (port: number): { host: string; port: number } => ({ host: HOST, port });
    const refusals: Array<{ id?: string; port?: number; reason: string }> = [];
    const onRefused = (m: unknown): void => { refusals.push(m as { reason: string }); };
    subscribe('gossipmonger-tls-transport:peer:refused', onRefused);
    try {
      member.digest({ id: 'peer-1', transport: at(node.port) }, from, [{ id: 'peer-2', maxVersionSeen: 1, transport: at(squatter.port) }, { id: 'peer-2', maxVersionSeen: 1, transport: at(real.port) }]);
      await until(() => node.stats().peers.proven === 2 && node.stats().peers.refused === 1 && node.stats().peers.pending === 0, 5000, 'both probes settled');
    } finally {
      unsubscribe('gossipmonger-tls-transport:peer:refused', onRefused);
    }
    // Refused for its certificate (not tried again for 60 s), not merely unreachable.
    expect(refusals.map((r) => [r.id, r.port, r.reason])).to.deep.equal([['peer-2', squatter.port, 'certificate']]);
    expect(ids(seen.digests[0]![1])).to.deep.equal([]);
    // The squatter's address was refused before a byte was written to it.
    expect(seen.errors.filter((e) => codeOf(e) === 'ERR_PEER_UNAUTHORIZED')).to.have.length(1);
    expect(squatter.stats().frames.in).to.equal(0);
    // Proven at the real address only: an entry giving that address passes, the squatter's does not.
    member.digest({ id: 'peer-1', transport: at(node.port) }, from, [{ id: 'peer-2', maxVersionSeen: 1, transport: at(squatter.port) }]);
    member.digest({ id: 'peer-1', transport: at(node.port) }, from, [{ id: 'peer-2', maxVersionSeen: 1, transport: at(real.port) }]);
    await until(() => seen.digests.length === 3);
    expect(seen.digests.slice(1).map((d) => ids(d[1]))).to.deep.equal([[], ['peer-2']]);
  });

  it('[plain] one connection proves one id: 600 senders on one connection make gossipmonger answer once', async () => {
    // The reflection flood of outbound.test.ts, membership on: every digest names a new
    // sender whose transport is the sink, all on one connection.
    const target = await sink('127.0.0.3');
    let victim: Monger | undefined;
    try {
      const node = await listening('plain');
      record(node);
      victim = new Gossipmonger({ id: 'victim', transport: { host: HOST, port: node.port } }, { transport: node, GOSSIP_INTERVAL: 60000 });
      victim.on('error', () => {});
      victim.update('k', 'v');
      // As its first round would (this victim never gossips on its own), tell the transport who it is.
      node.digest({ id: 'nobody', transport: { host: HOST, port: await closedPort() } }, { id: 'victim', transport: { host: HOST, port: node.port } }, []);
      const child = fork(join(__dirname, '..', 'support', 'reflection-attacker.js'), [String(node.port), String(target.port), '600'], { stdio: 'inherit' });
      await new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // Each of the other 599 held back whole: its sender and its one entry.
      await until(() => node.stats().peers.heldBack === 2 * 599, 5000, 'the other 599 held back');
      await until(() => target.total() === 1, 3000, 'the one answer');
      expect(victim.storage.livePeers().length + victim.storage.deadPeers().length).to.equal(1);
    } finally {
      if (victim) stopGossip([victim]);
      await target.stop();
    }
  });

  it('[plain] probes are sends: the outbound caps bound them, and a refused probe refuses its id', async () => {
    const blackhole = await sink('127.0.0.4');
    try {
      const node = await listening('plain', { outbound: { maxPerDestination: 2 } });
      const seen = record(node);
      node.digest({ id: 'x', transport: { host: HOST, port: await closedPort() } }, { id: 'node', transport: { host: HOST, port: node.port } }, []);
      const socket = await rawClient('plain', node.port);
      const entries = Array.from({ length: 5 }, (_, i) => ({ id: `fake-${i}`, maxVersionSeen: 1, transport: { host: '127.0.0.4', port: blackhole.port } }));
      socket.end(JSON.stringify({ digest: entries, sender: { id: 'introducer' } }) + '\n');
      // Refusals are reported once per destination and interval; stats() counts each.
      await until(() => node.stats().errors.ERR_OUTBOUND_LIMIT === 3, undefined, 'three probes over the cap');
      expect(seen.errors.filter((e) => codeOf(e) === 'ERR_OUTBOUND_LIMIT').length, 'one report for the destination').to.equal(1);
      expect(node.stats().peers).to.include({ probes: 5, refused: 3, pending: 2 });
      expect(blackhole.total()).to.be.at.most(2);
    } finally {
      // The sink first: a per-message send waits for its remote to close.
      await blackhole.stop();
      await closeAll();
    }
  });
});

function tlsOf (peer: string): Record<string, unknown> {
  return tlsFor('mtls', peer) as Record<string, unknown>;
}
