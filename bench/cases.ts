/**
 * What the benchmark measures: every case, the two message sizes, the
 * cluster cases, and the messages between the orchestrator (run.ts) and its
 * worker processes (worker.ts, cluster.ts).
 */

export type CaseName =
  | 'tcp-0.1.6'
  | 'plain per message'
  | 'plain per message, diagnostics subscriber'
  | 'plain per message, limits lifted'
  | 'tls per message (full)'
  | 'tls per message (resumed)'
  | 'mtls per message'
  | 'keepAlive plain'
  | 'keepAlive tls'
  | 'keepAlive mtls'
  | 'bare net connect/end'
  | 'bare tls connect/end (full)'
  | 'bare tls connect/end (resumed)'
  | 'bare net socket'
  | 'bare tls socket'
  | 'tcp-0.1.6, receiver alone'
  | 'plain per message, receiver alone'
  | 'tcp-0.1.6, sender alone'
  | 'plain per message, sender alone';

export interface CaseSpec {
  name: CaseName;
  /** Which implementation sends and receives; 'bare' is Node's own sockets, a line splitter and JSON.parse. */
  impl: 'old' | 'ours' | 'bare';
  mode: 'plain' | 'tls' | 'mtls';
  keepAlive: boolean;
  /** TLS session resumption on the sender. */
  resume: boolean;
  /** Subscribe to every diagnostics channel of the transport, in both processes. */
  diagnostics?: boolean;
  /**
   * Only this side runs `impl`; the other is the bare floor (connect/write/end,
   * or line splitting and JSON.parse). So a side's cost is measured against
   * the same peer for every implementation.
   */
  alone?: 'sender' | 'receiver';
  /** What the "vs 0.1.6" column compares with (default: tcp-0.1.6). */
  baseline?: CaseName;
  /** The bare case that does the same on the wire with nothing else: what the case's CPU per message is held to. */
  floor?: CaseName;
  /** Per-source and outbound caps lifted (every other case runs with the defaults, unless --lift-limits). */
  liftLimits?: boolean;
}

export const CASES: CaseSpec[] = [
  { name: 'tcp-0.1.6', impl: 'old', mode: 'plain', keepAlive: false, resume: false, floor: 'bare net connect/end' },
  { name: 'plain per message', impl: 'ours', mode: 'plain', keepAlive: false, resume: false, floor: 'bare net connect/end' },
  { name: 'plain per message, diagnostics subscriber', impl: 'ours', mode: 'plain', keepAlive: false, resume: false, diagnostics: true, floor: 'bare net connect/end' },
  { name: 'plain per message, limits lifted', impl: 'ours', mode: 'plain', keepAlive: false, resume: false, liftLimits: true, floor: 'bare net connect/end' },
  { name: 'bare net connect/end', impl: 'bare', mode: 'plain', keepAlive: false, resume: false },
  { name: 'tls per message (full)', impl: 'ours', mode: 'tls', keepAlive: false, resume: false, floor: 'bare tls connect/end (full)' },
  { name: 'tls per message (resumed)', impl: 'ours', mode: 'tls', keepAlive: false, resume: true, floor: 'bare tls connect/end (resumed)' },
  { name: 'mtls per message', impl: 'ours', mode: 'mtls', keepAlive: false, resume: true },
  { name: 'bare tls connect/end (full)', impl: 'bare', mode: 'tls', keepAlive: false, resume: false },
  { name: 'bare tls connect/end (resumed)', impl: 'bare', mode: 'tls', keepAlive: false, resume: true },
  { name: 'keepAlive plain', impl: 'ours', mode: 'plain', keepAlive: true, resume: true, floor: 'bare net socket' },
  { name: 'keepAlive tls', impl: 'ours', mode: 'tls', keepAlive: true, resume: true, floor: 'bare tls socket' },
  { name: 'keepAlive mtls', impl: 'ours', mode: 'mtls', keepAlive: true, resume: true },
  { name: 'bare net socket', impl: 'bare', mode: 'plain', keepAlive: true, resume: false },
  { name: 'bare tls socket', impl: 'bare', mode: 'tls', keepAlive: true, resume: false },
  { name: 'tcp-0.1.6, receiver alone', impl: 'old', mode: 'plain', keepAlive: false, resume: false, alone: 'receiver', baseline: 'tcp-0.1.6, receiver alone' },
  { name: 'plain per message, receiver alone', impl: 'ours', mode: 'plain', keepAlive: false, resume: false, alone: 'receiver', baseline: 'tcp-0.1.6, receiver alone' },
  { name: 'tcp-0.1.6, sender alone', impl: 'old', mode: 'plain', keepAlive: false, resume: false, alone: 'sender', baseline: 'tcp-0.1.6, sender alone' },
  { name: 'plain per message, sender alone', impl: 'ours', mode: 'plain', keepAlive: false, resume: false, alone: 'sender', baseline: 'tcp-0.1.6, sender alone' }
];

/** The implementation one side of a case runs. */
export function implOf (spec: CaseSpec, role: 'sender' | 'receiver'): CaseSpec['impl'] {
  return spec.alone === undefined || spec.alone === role ? spec.impl : 'bare';
}

export type SizeName = '1 KB digest' | '64 KB deltas';
export const SIZES: SizeName[] = ['1 KB digest', '64 KB deltas'];

/** The payload of one message, without the sender (which carries the send time). */
export function payloadFor (size: SizeName): { digest?: unknown[]; deltas?: unknown[] } {
  if (size === '1 KB digest') {
    // 16 entries as gossipmonger builds them: about 1 KB of JSON.
    return {
      digest: Array.from({ length: 16 }, (_, i) => ({ id: `peer-${i}`, maxVersionSeen: 1000 + i, transport: { host: '127.0.0.1', port: 9000 + i } }))
    };
  }
  return { deltas: [['peer-0', 'blob', 'x'.repeat(64 * 1024 - 100), 1]] };
}

/** Messages kept in flight by the sender: enough to keep the path busy, few enough not to queue. */
export function windowFor (spec: CaseSpec, size: SizeName): number {
  // Per message, the window is the number of connections open at once; the
  // count relayed back from the receiver arrives every few ms, so the window
  // must cover that delay or it, not the transport, sets the rate.
  if (!spec.keepAlive) return 128;
  return size === '1 KB digest' ? 1024 : 32;
}

/** A gossipmonger cluster case: every peer in one process, gossiping at a fixed interval. */
export interface ClusterSpec {
  mode: 'plain' | 'tls' | 'mtls';
  /** Pooled connections (the default with TLS) or one per message (the default in plain mode). */
  keepAlive: boolean;
  peers: number;
  /** Gossip interval, ms. */
  interval: number;
  /** Give up after this many ms. */
  timeout: number;
  /**
   * Lift maxConnectionsPerSource and connectionsPerSecondPerSource (run.ts
   * decides where, and the table says so): every peer here connects from
   * 127.0.0.1, so a per-source limit counts the whole cluster as one source.
   */
  liftSourceLimits: boolean;
}

/** A cluster case's outcome; counts are totals over all peers, up to convergence (or the timeout). */
export interface ClusterResult {
  converged: boolean;
  /** Gossip start to every peer holding every other peer's key. */
  ms: number;
  /** Gossip start to 99% of the key views replicated (undefined: never reached). */
  ms99: number | undefined;
  /** CPU time (user + system) of the process holding the cluster, over the same span. */
  cpuMs: number;
  /** Key views replicated, of peers * (peers - 1). */
  replicated: number;
  /** Outbound connections dialed (stats().connections.outbound: failed ones included). */
  outbound: number;
  /** Outbound connections the remote accepted, by TLS handshake: full, resumed (plain: all in `full`). */
  opened: { full: number; resumed: number };
  /** Unordered peer pairs that exchanged at least one frame (either way). */
  pairs: number;
  accepted: number;
  framesOut: number;
  errors: Record<string, number>;
  /** Inbound connections refused, by reason (stats().refusals), summed over the peers. */
  refusals: Record<string, number>;
}

/** Messages sent to one worker over IPC by the orchestrator. */
export type ToWorker =
  | { type: 'case'; role: 'receiver' | 'sender'; caseIndex: number; sizeIndex: number; port?: number; window?: number; keep: boolean }
  | { type: 'start' }
  | { type: 'measure' }
  | { type: 'stop' }
  | { type: 'received'; count: number };

export type FromWorker =
  | { type: 'ready'; port: number }
  | { type: 'received'; count: number; measured: number }
  | { type: 'result'; count: number; ms: number; p50: number; p99: number; peakRss: number; cpuMs: number }
  | { type: 'sent'; errors: number; cpuMs: number }
  | { type: 'idle' }
  | { type: 'cluster'; results: ClusterResult[] }
  | { type: 'parse'; round: ParseRound }
  | { type: 'rounds'; rounds: Array<{ sender: Record<'bare' | 'ours' | 'old', number>; receiver: Record<'bare' | 'ours' | 'old', number> }>; errors: number };

/** What the parse micro-benchmark (validate.ts) compares. */
export type ParseVariant = 'JSON.parse alone' | 'before' | 'after';
export const PARSE_VARIANTS: ParseVariant[] = ['JSON.parse alone', 'before', 'after'];
/** CPU µs per message of each variant, for each frame, in one round. */
export type ParseRound = Record<string, Record<ParseVariant, number>>;
