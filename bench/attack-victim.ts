/**
 * The victim of bench/attacks.ts, in a process of its own:
 *
 *   fork('dist/bench/attack-victim.js', [JSON.stringify(setup)])
 *
 * Loads the transport from `setup.module` (this build, or an older one with
 * --before), listens on 127.0.0.1 with its default options (TLS material
 * added for tls and mtls), optionally under a gossipmonger@0.1.10 peer, and
 * measures what it spends while it is attacked: peak inbound connections,
 * memory, event-loop delay, CPU. It also times the legitimate peer's digests,
 * whose `maxVersionSeen` carries their send time.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadPem } from '../scripts/generate-certs';
import { Gossipmonger, stopGossip, type Monger } from '../scripts/typed-packages';

export interface VictimSetup {
  /** Path of the transport module (a built dist/src/index.js). */
  module: string;
  mode: 'plain' | 'tls' | 'mtls';
  /** Run a gossipmonger peer on the transport (poisoning and reflection attacks). */
  gossipmonger: boolean;
  /** gossipmonger's own values: this many keys of `valueBytes` each (reflection replies carry them). */
  values?: number;
  valueBytes?: number;
  /**
   * An honest peer's port: once told ('honest' message), the victim sends it a
   * digest every 100 ms (its own sends, measured while it is attacked).
   */
  honestPort?: number;
}

export interface VictimReport {
  type: 'report';
  /** Legitimate digests delivered, and their delays (ms, sorted). */
  delays: number[];
  peakOpen: number;
  peakRssMiB: number;
  /** Peak heap + Buffers above the level at the start. */
  peakLiveMiB: number;
  eldMaxMs: number;
  /** The longest stall this process's own CPU accounts for (see above). */
  busyStallMs: number;
  eldP99Ms: number;
  cpuMs: number;
  errors: Record<string, number>;
  refusals: Record<string, number>;
  /** Peers gossipmonger holds at the end (gossipmonger runs only). */
  peers: number | undefined;
  /** Bytes of gossipmonger's own digest at the end: over 1 MiB, it cannot gossip any more. */
  digestBytes: number | undefined;
  /** Digests the victim sent to the honest peer. */
  sentToHonest: number;
  /** Outbound sockets open at most, and the most this process held for outbound frames (stats, when the build has them). */
  peakOutbound: number;
  peakOutboundQueuedMiB: number | undefined;
  /** Errors about sends to the honest peer, by code. */
  honestErrors: Record<string, number>;
}

interface AnyTransport extends NodeJS.EventEmitter {
  port: number;
  listen (callback: () => void): void;
  close (callback: () => void): void;
  stats? (): { connections: { open: number; outboundOpen?: number }; refusals?: Record<string, number>; outbound?: { queuedBytes?: number } };
  digest (remote: unknown, local: unknown, digest: unknown): void;
  server: { getConnections (cb: (error: Error | null, count: number) => void): void } | null;
}

function tlsOptions (mode: VictimSetup['mode']): Record<string, unknown> | undefined {
  if (mode === 'plain') return undefined;
  return { ...loadPem('peer-1'), ca: loadPem('ca').cert, ...(mode === 'mtls' ? { requestCert: true } : {}) };
}

function main (setup: VictimSetup): void {
  const TcpTransport = require(setup.module) as new (options: unknown) => AnyTransport;
  const tls = tlsOptions(setup.mode);
  const transport = new TcpTransport({ host: '127.0.0.1', port: 0, ...(tls ? { tls } : {}) });
  const errors: Record<string, number> = {};
  const delays: number[] = [];
  const honestErrors: Record<string, number> = {};
  transport.on('error', (error: { code?: string; remotePort?: number; count?: number }) => {
    errors[error.code ?? 'UNKNOWN'] = (errors[error.code ?? 'UNKNOWN'] ?? 0) + 1;
    if (setup.honestPort !== undefined && error.remotePort === setup.honestPort) honestErrors[error.code ?? 'UNKNOWN'] = (honestErrors[error.code ?? 'UNKNOWN'] ?? 0) + (error.count ?? 1);
  });
  transport.on('digest', (sender: { id: string }, digest: Array<{ maxVersionSeen: number }>) => {
    // maxVersionSeen is the send time; 1 marks the digest sent before the attack, not timed.
    if (sender.id === 'legit' && digest[0]!.maxVersionSeen > 1) delays.push(Date.now() - digest[0]!.maxVersionSeen);
  });
  let monger: Monger | undefined;
  transport.listen(() => {
    if (setup.gossipmonger) {
      monger = new Gossipmonger({ id: 'victim', transport: { host: '127.0.0.1', port: transport.port } }, { transport, GOSSIP_INTERVAL: 500 });
      monger.on('error', () => {});
      for (let i = 0; i < (setup.values ?? 0); i++) monger.update(`value-${i}`, 'v'.repeat(setup.valueBytes ?? 1000));
      monger.gossip();
    }
    process.send!({ type: 'ready', port: transport.port });
  });

  // Stalls of the event loop, two ways: the delay (wall clock; on a shared
  // machine, time this process was not scheduled counts too), and the CPU
  // this process spent meanwhile, which bounds how long its own code held the
  // loop (the lesser of the two for each 10 ms tick). BENCH_STALLS=1 prints each over 100 ms.
  const started = performance.now();
  let last = started;
  let lastCpu = process.cpuUsage();
  let busyStallMs = 0;
  setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    const stall = now - last - 10;
    const busy = Math.min(stall, (cpu.user + cpu.system) / 1000);
    busyStallMs = Math.max(busyStallMs, busy);
    if (process.env.BENCH_STALLS === '1' && stall > 100) process.stderr.write(`victim stall: ${stall.toFixed(0)} ms (CPU ${busy.toFixed(0)} ms) at ${((now - started) / 1000).toFixed(2)} s, heap ${(process.memoryUsage().heapUsed / 1048576).toFixed(0)} MiB\n`);
    last = now;
    lastCpu = process.cpuUsage();
  }, 10).unref();
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const cpu = process.cpuUsage();
  const live = (): number => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
  const base = live();
  let peakOpen = 0;
  let peakOutbound = 0;
  let peakQueued: number | undefined;
  let sentToHonest = 0;
  let honest: NodeJS.Timeout | undefined;
  let peakRss = 0;
  let peakLive = 0;
  const sample = (): void => {
    const stats = transport.stats?.();
    if (stats) {
      peakOpen = Math.max(peakOpen, stats.connections.open);
      peakOutbound = Math.max(peakOutbound, stats.connections.outboundOpen ?? 0);
      const queued = stats.outbound?.queuedBytes;
      if (queued !== undefined) peakQueued = Math.max(peakQueued ?? 0, queued);
    }
    else transport.server?.getConnections((_, count) => { peakOpen = Math.max(peakOpen, count); });
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakLive = Math.max(peakLive, m.heapUsed + m.arrayBuffers - base);
  };
  const sampler = setInterval(sample, 10);

  process.on('message', (message) => {
    if (message === 'honest' && setup.honestPort !== undefined) {
      const remote = { id: 'honest', transport: { host: '127.0.0.1', port: setup.honestPort } };
      const local = { id: 'victim', transport: { host: '127.0.0.1', port: transport.port } };
      honest = setInterval(() => {
        transport.digest(remote, local, [{ id: 'victim', maxVersionSeen: Date.now() }]);
        sentToHonest++;
      }, 100);
      return;
    }
    if (message === 'quiet') {
      clearInterval(honest);
      return;
    }
    if (message !== 'stop') return;
    clearInterval(honest);
    clearInterval(sampler);
    sample();
    eld.disable();
    const used = process.cpuUsage(cpu);
    let peers: number | undefined;
    let digestBytes: number | undefined;
    if (monger) {
      stopGossip([monger]);
      peers = monger.storage.livePeers().length + monger.storage.deadPeers().length;
      digestBytes = Buffer.byteLength(JSON.stringify(monger.digest(monger.storage.livePeers())));
    }
    const report: VictimReport = {
      type: 'report',
      delays: delays.sort((a, b) => a - b),
      peakOpen,
      peakRssMiB: peakRss / 1048576,
      peakLiveMiB: peakLive / 1048576,
      eldMaxMs: eld.max / 1e6,
      busyStallMs,
      eldP99Ms: eld.percentile(99) / 1e6,
      cpuMs: (used.user + used.system) / 1000,
      errors,
      refusals: transport.stats?.().refusals ?? {},
      peers,
      digestBytes,
      sentToHonest,
      peakOutbound,
      peakOutboundQueuedMiB: peakQueued === undefined ? undefined : peakQueued / 1048576,
      honestErrors
    };
    process.send!(report, () => process.exit(0));
  });
}

if (require.main === module) main(JSON.parse(process.argv[2]!) as VictimSetup);
