/**
 * Outbound policy and bounds: allow-lists checked on the resolved address,
 * caps on connections in flight and pooled remotes, sockets let go of that are
 * always freed, and a reflection flood through gossipmonger from another process.
 */
import { expect } from 'chai';
import { fork } from 'node:child_process';
import { BlockList, connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Gossipmonger, stopGossip, type Monger } from '../../scripts/typed-packages';
import { HOST, TcpTransport, ca, closeAll, codeOf, listening, pem, record, sleep, track, until, type Mode } from '../support/helpers';
import { OutboundGate } from '../../src/outbound/gate';
import { destinationOf } from '../../src/net/addresses';
import { resolveOptions } from '../../src/options';

/** A TCP server on `host` that counts connections and never closes or answers them. */
async function sink (host: string, options: { allowHalfOpen?: boolean } = {}): Promise<{ port: number; open: () => number; total: () => number; peak: () => number; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let total = 0;
  let peak = 0;
  const server: Server = createServer({ allowHalfOpen: options.allowHalfOpen ?? true }, (socket) => {
    total++;
    sockets.add(socket);
    peak = Math.max(peak, sockets.size);
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    open: () => sockets.size,
    total: () => total,
    peak: () => peak,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  };
}

const sinks: Array<{ stop: () => Promise<void> }> = [];
async function tracked<T extends { stop: () => Promise<void> }> (s: Promise<T>): Promise<T> {
  const value = await s;
  sinks.push(value);
  return value;
}

function plainSender (options: Record<string, unknown> = {}): TcpTransport {
  const t = track(new TcpTransport({ host: HOST, port: 0, ...options }));
  return t;
}

type Lookup = (host: string, options: unknown, callback: (error: NodeJS.ErrnoException | null, addresses: Array<{ address: string; family: number }>) => void) => void;

/** A resolver for made-up names; counts calls per name. */
function fakeDns (table: Record<string, string[]>): { lookup: Lookup; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const lookup: Lookup = (host, _options, callback) => {
    calls[host] = (calls[host] ?? 0) + 1;
    const answers = table[host];
    setImmediate(() => answers === undefined
      ? callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), [])
      : callback(null, answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))));
  };
  return { lookup, calls };
}

describe('outbound policy', () => {
  afterEach(async () => {
    // Sinks first: a per-message socket waits for its remote to close.
    await Promise.all(sinks.splice(0).map((s) => s.stop()));
    await closeAll();
  });

  describe('outbound.allow', () => {
    it('refuses a destination outside the list with ERR_DESTINATION_REFUSED and opens no socket', async () => {
      const outside = await tracked(sink('127.0.0.2'));
      const receiver = await listening('plain');
      const seen = record(receiver);
      const sender = plainSender({ outbound: { allow: ['127.0.0.1/32'] } });
      const errors = record(sender).errors;
      sender.digest({ transport: { host: '127.0.0.2', port: outside.port } }, { id: 'me' }, []);
      sender.digest({ transport: { host: HOST, port: receiver.port } }, { id: 'me' }, []);
      await until(() => errors.length === 1 && seen.digests.length === 1);
      expect(codeOf(errors[0])).to.equal('ERR_DESTINATION_REFUSED');
      expect(errors[0]).to.include({ host: '127.0.0.2', framesDropped: 1 });
      await sleep(30);
      expect(outside.total()).to.equal(0);
      expect(sender.stats().connections.outbound).to.equal(1);
    });

    for (const [mode, keepAlive] of [['plain', false], ['plain', true], ['mtls', false]] as Array<[Mode, boolean]>) {
      it(`resolves a host name once and connects to the address it checked [${mode}${keepAlive ? ', keepAlive' : ''}]`, async () => {
        const outside = await tracked(sink('127.0.0.3'));
        const receiver = await listening(mode);
        const seen = record(receiver);
        // The good name answers inside the list first, then outside it (DNS
        // rebinding); 'evil.test' only outside; 'nowhere.test' not at all. In
        // plain mode the good name exists only in this resolver, so delivery
        // proves the socket went to the address that was checked; in mutual
        // TLS it is 'localhost', the name the certificate carries.
        const good = mode === 'plain' ? 'cluster.test' : 'localhost';
        let flip = 0;
        const dns = fakeDns({ 'evil.test': ['127.0.0.3'] });
        const lookup: Lookup = (host, options, callback) => {
          if (host !== good) return dns.lookup(host, options, callback);
          dns.calls[host] = (dns.calls[host] ?? 0) + 1;
          const address = flip++ === 0 ? HOST : '127.0.0.3';
          setImmediate(() => callback(null, [{ address, family: 4 }]));
        };
        const sender = track(new TcpTransport({
          host: HOST,
          port: 0,
          keepAlive,
          outbound: { allow: '127.0.0.1', lookup: lookup as never },
          ...(mode === 'plain' ? {} : { tls: { ...pem('peer-2'), ca: ca() } })
        }));
        const errors = record(sender).errors;
        sender.digest({ transport: { host: 'evil.test', port: outside.port } }, { id: 'me' }, []);
        sender.digest({ transport: { host: 'nowhere.test', port: outside.port } }, { id: 'me' }, []);
        sender.digest({ transport: { host: good, port: receiver.port } }, { id: 'me' }, []);
        await until(() => errors.length === 2 && seen.digests.length === 1);
        expect(errors.map(codeOf)).to.deep.equal(['ERR_DESTINATION_REFUSED', 'ERR_DESTINATION_REFUSED']);
        expect(errors.map((e) => (e as unknown as { address: string }).address).sort()).to.deep.equal(['127.0.0.3', undefined].sort());
        expect(dns.calls).to.deep.equal({ 'evil.test': 1, 'nowhere.test': 1, [good]: 1 });
        expect(outside.total()).to.equal(0);
      });
    }

    it('takes CIDR strings or a net.BlockList, and throws naming the option for a bad entry', async () => {
      const list = new BlockList();
      list.addSubnet('10.0.0.0', 8);
      expect(() => plainSender({ outbound: { allow: list } })).to.not.throw();
      expect(() => plainSender({ allowFrom: ['::1/128', '127.0.0.0/8'] })).to.not.throw();
      expect(() => plainSender({ outbound: { allow: ['10.0.0.0/33'] } })).to.throw(TypeError, /options\.outbound\.allow/);
      expect(() => plainSender({ allowFrom: 'example.com' })).to.throw(TypeError, /options\.allowFrom/);
      expect(() => plainSender({ outbound: { lookup: 'dns' } })).to.throw(TypeError, /options\.outbound\.lookup/);
      expect(() => plainSender({ outbound: { maxConnections: 0 } })).to.throw(RangeError, /options\.outbound\.maxConnections/);
      expect(() => plainSender({ outbound: { allowTo: [] } })).to.throw(TypeError, /options\.outbound\.allowTo/);
    });
  });

  describe('allowFrom', () => {
    it('closes a connection from outside the list before reading a byte, and serves the rest', async () => {
      const receiver = await listening('mtls', { allowFrom: ['127.0.0.1/32'] });
      const seen = record(receiver);
      const outsider = track(new TcpTransport({ host: HOST, port: 0, tls: { ...pem('peer-3'), ca: ca() } }));
      const socket = connect({ host: HOST, port: receiver.port, localAddress: '127.0.0.2' });
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('close', resolve));
      outsider.digest({ transport: { host: HOST, port: receiver.port } }, { id: 'inside' }, []);
      await until(() => seen.digests.length === 1);
      expect(receiver.stats().refusals['not-allowed']).to.equal(1);
      expect(receiver.stats().connections.accepted).to.equal(1);
      expect(seen.errors.map(codeOf)).to.deep.equal(['ERR_CONNECTIONS_REFUSED']);
      expect(seen.errors[0]).to.deep.include({ source: '127.0.0.2', reasons: { 'not-allowed': 1 } });
    });
  });

  describe('caps', () => {
    it('holds outbound sockets to one destination at maxPerDestination and refuses the rest with ERR_OUTBOUND_LIMIT', async () => {
      const stalled = await tracked(sink(HOST));
      const sender = plainSender({ outbound: { maxPerDestination: 3 } });
      const errors = record(sender).errors;
      for (let i = 0; i < 20; i++) sender.digest({ transport: { host: HOST, port: stalled.port } }, { id: 'me' }, []);
      await until(() => sender.stats().errors.ERR_OUTBOUND_LIMIT === 17 && stalled.total() === 3);
      expect(sender.stats().outbound.refusals).to.deep.equal({ maxPerDestination: 17 });
      // One report for the destination at once; the other 16 are held for the next one.
      expect(errors.map(codeOf)).to.deep.equal(['ERR_OUTBOUND_LIMIT']);
      expect(errors[0]).to.include({ limit: 'maxPerDestination', max: 3, framesDropped: 1 });
      await sleep(30);
      expect(stalled.peak()).to.equal(3);
    });

    it('holds outbound sockets overall at maxConnections, name resolutions included', async () => {
      const stalled = await Promise.all([0, 1, 2, 3].map(() => tracked(sink(HOST))));
      const sender = plainSender({ outbound: { maxConnections: 5 } });
      const errors = record(sender).errors;
      for (let i = 0; i < 40; i++) sender.digest({ transport: { host: HOST, port: stalled[i % 4]!.port } }, { id: 'me' }, []);
      // Every send accounted for: 35 refused at once, and the 5 let through
      // accepted by the sinks (however long the machine takes to connect them).
      const accepted = (): number => stalled.reduce((n, s) => n + s.total(), 0);
      await until(() => sender.stats().errors.ERR_OUTBOUND_LIMIT === 35 && accepted() >= 5, undefined, '35 refusals and 5 connections');
      await sleep(30);
      expect(accepted()).to.equal(5);
      // No destination holds more than one other would after a swap (2, 1, 1, 1): none gives way.
      expect(sender.stats().outbound.refusals).to.deep.equal({ maxConnections: 35 });
      expect(errors.length, 'one report per destination').to.equal(4);
      expect(errors.every((e) => (e as unknown as { limit: string }).limit === 'maxConnections')).to.equal(true);
    });

    it('keeps at most maxPooledRemotes pooled remotes, retiring the least recently used idle one', async () => {
      const servers = await Promise.all([0, 1, 2, 3, 4].map(() => tracked(sink(HOST, { allowHalfOpen: false }))));
      const sender = plainSender({ keepAlive: true, outbound: { maxPooledRemotes: 2 } });
      const errors = record(sender).errors;
      for (const s of servers) {
        sender.digest({ transport: { host: HOST, port: s.port } }, { id: 'me' }, []);
        await until(() => s.total() === 1);
        await sleep(10);
      }
      await until(() => servers.reduce((n, s) => n + s.open(), 0) === 2, undefined, 'two pooled connections');
      expect(errors).to.deep.equal([]);
    });
  });

  describe('fair share', () => {
    function tlsSender (options: Record<string, unknown> = {}): TcpTransport {
      return track(new TcpTransport({ host: HOST, port: 0, tls: { ...pem('peer-2'), ca: ca() }, ...options }));
    }

    it('pooled: at maxPooledRemotes, a stranger cannot push out a working connection, and a dial that never opened gives its place to a proven destination', async () => {
      const tarpits = await Promise.all([0, 1, 2, 3].map(() => tracked(sink(HOST))));
      const honest = await listening('tls');
      const seen = record(honest);
      const sender = tlsSender({ keepAlive: { idleTimeout: 200 }, outbound: { maxPooledRemotes: 3 } });
      const errors = record(sender).errors;
      // One local id throughout, as a node has: a pooled connection speaks for one sender (proven membership).
      const toHonest = (label: string): void => sender.digest({ id: 'honest', transport: { host: HOST, port: honest.port } }, { id: 'me' }, [{ id: 'me', maxVersionSeen: ['first', 'second', 'third'].indexOf(label) }]);
      toHonest('first');
      await until(() => seen.digests.length === 1, 3000, 'the first digest');
      // Three strangers that accept and never answer the handshake: two take the free places,
      // the third finds only dials under way and a working connection, and is refused.
      for (const t of tarpits.slice(0, 3)) sender.digest({ transport: { host: HOST, port: t.port } }, { id: 'me' }, []);
      await until(() => tarpits.slice(0, 2).every((t) => t.total() === 1), 3000, 'two dials to strangers');
      expect(sender.stats().outbound.refusals).to.deep.equal({ maxPooledRemotes: 1 });
      toHonest('second');
      await until(() => seen.digests.length === 2, 3000, 'the second digest, on the connection kept');
      // The honest connection goes idle and closes; a stranger takes its place: three dials that never open.
      await until(() => honest.stats().connections.open === 0, 3000, 'the idle pooled connection to close');
      sender.digest({ transport: { host: HOST, port: tarpits[3]!.port } }, { id: 'me' }, []);
      await until(() => tarpits[3]!.total() === 1, 3000, 'the third dial to a stranger');
      // The honest destination completed exchanges before: the oldest dial that never opened gives way.
      toHonest('third');
      await until(() => seen.digests.length === 3, 3000, 'the third digest');
      expect(sender.stats().outbound.refusals).to.deep.include({ evicted: 1 });
      const evicted = errors.find((e) => (e as { evicted?: string }).evicted !== undefined);
      expect(evicted).to.include({ code: 'ERR_OUTBOUND_LIMIT', limit: 'maxPooledRemotes', evicted: 'never completed a connection', remotePort: tarpits[0]!.port, framesDropped: 1 });
    });

    it('per message: at maxConnections, strangers that never complete an exchange give their slots to an honest destination', async () => {
      const tarpits = await Promise.all([0, 1].map(() => tracked(sink(HOST))));
      const honest = await listening('plain');
      const seen = record(honest);
      const sender = plainSender({ connectTimeout: 10000, outbound: { maxConnections: 8 } });
      record(sender);
      for (let i = 0; i < 20; i++) sender.digest({ transport: { host: HOST, port: tarpits[i % 2]!.port } }, { id: 'me' }, []);
      await until(() => tarpits[0]!.open() + tarpits[1]!.open() === 8, 3000, 'every slot held by the strangers');
      // One digest a round, as gossip goes: the first takes a slot back from the stranger
      // holding the most; each exchange gives its slot back as it completes, for the next.
      for (let i = 0; i < 5; i++) {
        sender.digest({ id: 'honest', transport: { host: HOST, port: honest.port } }, { id: `honest-${i}` }, []);
        await until(() => seen.digests.length === i + 1, 3000, `honest digest ${i}`);
      }
      // (Another, if a send found the previous exchange's slot not yet given back.)
      const evicted = sender.stats().outbound.refusals.evicted!;
      expect(evicted).to.be.within(1, 5);
      await until(() => sender.stats().connections.outboundOpen === 8 - evicted, 3000, 'the honest exchanges to close');
      // Strangers take the free slots again: the cap holds.
      for (let i = 0; i < 8; i++) sender.digest({ transport: { host: HOST, port: tarpits[i % 2]!.port } }, { id: 'me' }, []);
      expect(sender.stats().connections.outboundOpen).to.equal(8);
    });
  });

  describe('one memory budget for everything queued (outbound.maxQueuedBytes)', () => {
    it('refuses frames past it, counted and never queued; a dial that never opened gives its queue up to a proven destination', async () => {
      const tarpits = await Promise.all([0, 1].map(() => tracked(sink(HOST))));
      const honest = await listening('tls');
      const seen = record(honest);
      const budget = 256 * 1024;
      const sender = track(new TcpTransport({ host: HOST, port: 0, tls: { ...pem('peer-2'), ca: ca() }, outbound: { maxQueuedBytes: budget } }));
      const errors = record(sender).errors;
      const blob = 'b'.repeat(40 * 1024);
      // The honest destination proves itself first.
      sender.deltas({ id: 'honest', transport: { host: HOST, port: honest.port } }, { id: 'honest-0' }, [['x', 'k', blob, 1]]);
      await until(() => seen.deltas.length === 1, 3000, 'the first deltas');
      // Two strangers that never answer the handshake: their queues fill the budget (each under its own 8 MiB).
      for (let i = 0; i < 20; i++) sender.deltas({ transport: { host: HOST, port: tarpits[i % 2]!.port } }, { id: 'me' }, [['x', 'k', blob, i]]);
      const queued = sender.stats().outbound.queuedBytes;
      expect(queued, 'bytes queued').to.be.at.most(budget);
      expect(queued).to.be.above(budget - 50 * 1024);
      const refused = sender.stats().outbound.refusals.maxQueuedBytes ?? 0;
      expect(refused, 'frames refused').to.be.at.least(20 - Math.floor(budget / (40 * 1024)));
      expect(errors.filter((e) => codeOf(e) === 'ERR_OUTBOUND_LIMIT').every((e) => (e as { limit?: string }).limit === 'maxQueuedBytes')).to.equal(true);
      // The honest frames find room: the strangers' oldest queued frames give way.
      for (let i = 1; i <= 3; i++) sender.deltas({ id: 'honest', transport: { host: HOST, port: honest.port } }, { id: 'honest-0' }, [['x', 'k', blob, i]]);
      await until(() => seen.deltas.length === 4, 3000, 'the honest deltas');
      expect(sender.stats().outbound.refusals.evicted).to.be.at.least(1);
      expect(sender.stats().outbound.queuedBytes).to.be.at.most(budget);
    });
  });

  describe('pooled remotes made for a refused frame', () => {
    it('keep no place in the pool, and close() does not wait for them', async () => {
      const honest = await listening('plain');
      const seen = record(honest);
      const sender = plainSender({ keepAlive: { maxQueuedBytes: 1024 }, outbound: { maxPooledRemotes: 1 } });
      const errors = record(sender).errors;
      // A frame over the remote's own budget: refused before any dial.
      sender.deltas({ transport: { host: HOST, port: 9 } }, { id: 'me' }, [['x', 'k', 'z'.repeat(4096), 1]]);
      expect(errors.map(codeOf)).to.deep.equal(['ERR_BACKPRESSURE']);
      // The one pooled place is still free for the next destination.
      sender.digest({ transport: { host: HOST, port: honest.port } }, { id: 'me' }, []);
      await until(() => seen.digests.length === 1, 3000, 'the digest');
      expect(errors).to.have.length(1);
      await sender.close();
    });
  });

  describe('refusals aggregated per destination and code', () => {
    it('reports one at once, sums the rest with their frame counts, and reports the sum at close()', async () => {
      const stalled = await tracked(sink(HOST));
      const sender = plainSender({ outbound: { maxPerDestination: 2 } });
      const errors = record(sender).errors;
      for (let i = 0; i < 12; i++) sender.digest({ transport: { host: HOST, port: stalled.port } }, { id: 'me' }, []);
      await until(() => sender.stats().errors.ERR_OUTBOUND_LIMIT === 10);
      expect(errors).to.have.length(1);
      await stalled.stop();
      await sender.close();
      const limits = errors.filter((e) => codeOf(e) === 'ERR_OUTBOUND_LIMIT');
      expect(limits).to.have.length(2);
      expect(limits[1]).to.include({ count: 9, framesDropped: 9, remotePort: stalled.port });
      // Every refused frame accounted for: 1 + 9.
      expect(limits.reduce((n, e) => n + ((e as { framesDropped?: number }).framesDropped ?? 0), 0)).to.equal(10);
    });
  });

  describe('sockets let go of', () => {
    it('destroys a pooled socket whose remote never closes after end(), with ERR_CLOSE_TIMEOUT', async () => {
      const stubborn = await tracked(sink(HOST));
      const sender = plainSender({ keepAlive: { idleTimeout: 50 }, connectTimeout: 300 });
      const errors = record(sender).errors;
      sender.digest({ transport: { host: HOST, port: stubborn.port } }, { id: 'me' }, []);
      await until(() => stubborn.open() === 1);
      await until(() => sender.stats().connections.retiring === 1, undefined, 'the idle socket to be ended');
      await until(() => errors.length === 1, 5000, 'the retired socket to be destroyed');
      expect(errors.map(codeOf)).to.deep.equal(['ERR_CLOSE_TIMEOUT']);
      await until(() => sender.stats().connections.outboundOpen === 0, undefined, 'its outbound slot to be freed');
      expect(sender.stats().connections.retiring).to.equal(0);
    });

    it('keeps at most maxPooledRemotes sockets waiting to close, destroying the oldest first', async () => {
      const stubborn = await Promise.all([0, 1, 2, 3, 4, 5, 6].map(() => tracked(sink(HOST))));
      // A close timer far beyond the test: only the bound can free these.
      const sender = plainSender({ keepAlive: true, connectTimeout: 60000, outbound: { maxPooledRemotes: 2 } });
      const errors = record(sender).errors;
      for (const s of stubborn) {
        sender.digest({ transport: { host: HOST, port: s.port } }, { id: 'me' }, []);
        await until(() => s.total() === 1);
        await sleep(10);
      }
      // 7 remotes through a pool of 2: 5 retired; at most 2 may wait to close.
      await until(() => errors.length === 3, undefined, 'three oldest retiring sockets destroyed');
      await sleep(30);
      expect(errors.map(codeOf)).to.deep.equal(Array(3).fill('ERR_CLOSE_TIMEOUT'));
      expect(sender.stats().connections.retiring).to.equal(2);
      expect(sender.stats().connections.outboundOpen, '2 pooled + 2 retiring').to.equal(4);
    });
  });
});

describe('reflection flood through gossipmonger (attacker in its own process)', function () {
  this.timeout(20000);
  let victim: Monger | undefined;

  afterEach(async () => {
    if (victim) stopGossip([victim]);
    victim = undefined;
    await Promise.all(sinks.splice(0).map((s) => s.stop()));
    await closeAll();
  });

  async function flood (outbound: Record<string, unknown>): Promise<{ sinkTotal: number; sinkPeak: number; errors: Record<string, number>; legit: boolean }> {
    // Every digest names a new sender whose transport is the sink on 127.0.0.3:
    // gossipmonger answers each with deltas sent there.
    const target = await tracked(sink('127.0.0.3'));
    // membership off: these tests measure the outbound caps alone. With it on (the default), one
    // connection proves one sender, so this flood gets a single reply (membership.test.ts: "one connection proves one id").
    const transport = await listening('plain', { connectTimeout: 1000, membership: false, outbound: { ...outbound } });
    record(transport);
    victim = new Gossipmonger({ id: 'victim', transport: { host: HOST, port: transport.port } }, { transport, GOSSIP_INTERVAL: 60000 });
    victim.on('error', () => {});
    victim.update('k', 'v');
    const legitSeen: unknown[] = [];
    const legit = await listening('plain');
    legit.on('deltas', (...args) => legitSeen.push(args));
    const child = fork(join(__dirname, '..', 'support', 'reflection-attacker.js'), [String(transport.port), String(target.port), '600'], { stdio: 'inherit' });
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await done;
    // A legitimate peer on 127.0.0.1 asks for the victim's data after the flood.
    const frame = JSON.stringify({ digest: [{ id: 'victim', maxVersionSeen: 0 }], sender: { id: 'legit', transport: { host: HOST, port: legit.port } } });
    const s = connect({ host: HOST, port: transport.port });
    s.on('error', () => {});
    s.end(frame + '\r\n');
    await until(() => legitSeen.length === 1 || transport.stats().errors.ERR_OUTBOUND_LIMIT === undefined, 5000, 'the legitimate reply').catch(() => {});
    await sleep(100);
    return { sinkTotal: target.total(), sinkPeak: target.peak(), errors: transport.stats().errors, legit: legitSeen.length === 1 };
  }

  it('with outbound.maxConnections, 600 reflected replies hold at most that many sockets', async () => {
    const r = await flood({ maxConnections: 32, maxPerDestination: 16 });
    expect(r.sinkPeak, 'sockets at the reflection target').to.be.at.most(16);
    expect(r.errors.ERR_OUTBOUND_LIMIT ?? 0).to.be.at.least(600 - 32);
    // Per destination, the flood cannot take every slot: the legitimate peer is answered.
    expect(r.legit).to.equal(true);
  });

  it('with outbound.allow, no reflected reply leaves the allowed network and the legitimate peer is answered', async () => {
    const r = await flood({ allow: ['127.0.0.1/32'] });
    expect(r.sinkTotal).to.equal(0);
    expect(r.errors.ERR_DESTINATION_REFUSED).to.equal(600);
    expect(r.legit).to.equal(true);
  });
});

describe('a receiver that trickles bytes back (attacker in its own process)', function () {
  this.timeout(15000);
  afterEach(closeAll);

  for (const mode of ['plain', 'tls'] as Mode[]) {
    it(`[${mode}] cannot hold per-message connections, nor their outbound slots: each ends at connectTimeout`, async () => {
      const child = fork(join(__dirname, '..', 'support', 'trickle-receiver.js'), [mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      try {
        const [{ port }] = await new Promise<[{ port: number }]>((resolve) => child.once('message', (message) => resolve([message as { port: number }])));
        const connectTimeout = 300;
        const sender = track(new TcpTransport({
          host: HOST,
          port: 0,
          connectTimeout,
          keepAlive: false,
          outbound: { maxConnections: 4, maxPerDestination: 4 },
          ...(mode === 'tls' ? { tls: { ...pem('peer-2'), ca: ca() } } : {})
        }));
        const errors = record(sender).errors;
        // What a digest naming the attacker's peers makes gossipmonger do: send to them, every slot.
        for (let i = 0; i < 4; i++) sender.digest({ id: `trickler-${i}`, transport: { host: HOST, port } }, { id: 'victim' }, []);
        // The trickle goes on: every connection must still end, one step's
        // timeout after its frame was flushed (within a quarter of it).
        await until(() => errors.length === 4, 10 * connectTimeout, 'every trickled connection to time out');
        expect(errors.map(codeOf)).to.deep.equal(Array(4).fill('ERR_CONNECT_TIMEOUT'));
        for (const error of errors) expect(error).to.include({ remotePort: port, framesWritten: 1 });
        await until(() => sender.stats().connections.outboundOpen === 0, 2000, 'the slots to be given back');
        // The slots are free again: an honest peer gets its gossip.
        const honest = await listening(mode);
        const seen = record(honest);
        sender.digest({ id: 'honest', transport: { host: HOST, port: honest.port } }, { id: 'victim' }, []);
        await until(() => seen.digests.length === 1, 5000, 'the honest delivery');
        expect(errors).to.have.length(4);
      } finally {
        child.disconnect();
      }
    });
  }
});

describe('outbound.maxPerDestination counts one address however it is spelt', () => {
  // Each spelling below names 127.0.0.1 or ::1 to the system resolver and to connect().
  const loopback4 = ['127.0.0.1', '127.1', '2130706433', '0x7f000001', '127.000.000.001', '0177.0.0.1', '::ffff:127.0.0.1', '::ffff:7f00:1'];
  const loopback6 = ['::1', '0::1', '0:0:0:0:0:0:0:1', '0000:0000:0000:0000:0000:0000:0000:0001'];
  const names = ['localhost', 'LOCALHOST', 'localhost.'];

  it('gives every spelling of an address, and of a name, one budget', () => {
    const gate = new OutboundGate(resolveOptions({ outbound: { maxPerDestination: 1 } }).outbound);
    const admitted = (hosts: string[]): string[] => hosts.filter((host) => {
      let ok = false;
      gate.open(host, 9742, (refused) => { ok = refused === undefined; });
      return ok;
    });
    expect(admitted(loopback4)).to.deep.equal(['127.0.0.1']);
    expect(admitted(loopback6)).to.deep.equal(['::1']);
    expect(admitted(names)).to.deep.equal(['localhost']);
    // Another port is another destination.
    let other = false;
    gate.open('127.1', 9743, (refused) => { other = refused === undefined; });
    expect(other).to.equal(true);
  });

  it('names the canonical form of every spelling', () => {
    for (const host of loopback4) expect(destinationOf(host), host).to.equal('127.0.0.1');
    for (const host of loopback6) expect(destinationOf(host), host).to.equal('::1');
    expect(destinationOf('Example.ORG.')).to.equal('example.org');
    expect(destinationOf('2001:DB8::1')).to.equal('2001:db8::1');
    // Not numbers the resolver reads as an address: left as names.
    for (const host of ['1.2.3.4.5', '256.1.1.1', '08', 'deadbeef', '4294967296']) expect(destinationOf(host), host).to.equal(host);
  });
});
