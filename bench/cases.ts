/**
 * What the benchmark measures: every case, the two message sizes, and how a
 * case's sender and receiver are configured. Shared by run.ts and worker.ts.
 */

export type CaseName =
  | 'tcp-0.1.6'
  | 'plain per message'
  | 'tls per message (full)'
  | 'tls per message (resumed)'
  | 'mtls per message'
  | 'keepAlive plain'
  | 'keepAlive tls'
  | 'keepAlive mtls'
  | 'raw net socket'
  | 'raw tls socket';

export interface CaseSpec {
  name: CaseName;
  /** Which implementation sends and receives. */
  impl: 'old' | 'ours' | 'raw';
  mode: 'plain' | 'tls' | 'mtls';
  keepAlive: boolean;
  /** TLS session resumption on the sender. */
  resume: boolean;
}

export const CASES: CaseSpec[] = [
  { name: 'tcp-0.1.6', impl: 'old', mode: 'plain', keepAlive: false, resume: false },
  { name: 'plain per message', impl: 'ours', mode: 'plain', keepAlive: false, resume: false },
  { name: 'tls per message (full)', impl: 'ours', mode: 'tls', keepAlive: false, resume: false },
  { name: 'tls per message (resumed)', impl: 'ours', mode: 'tls', keepAlive: false, resume: true },
  { name: 'mtls per message', impl: 'ours', mode: 'mtls', keepAlive: false, resume: true },
  { name: 'keepAlive plain', impl: 'ours', mode: 'plain', keepAlive: true, resume: true },
  { name: 'keepAlive tls', impl: 'ours', mode: 'tls', keepAlive: true, resume: true },
  { name: 'keepAlive mtls', impl: 'ours', mode: 'mtls', keepAlive: true, resume: true },
  { name: 'raw net socket', impl: 'raw', mode: 'plain', keepAlive: true, resume: false },
  { name: 'raw tls socket', impl: 'raw', mode: 'tls', keepAlive: true, resume: false }
];

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

/** Messages sent to one receiver from the IPC of the orchestrator. */
export type ToWorker =
  | { type: 'start' }
  | { type: 'measure' }
  | { type: 'stop' }
  | { type: 'received'; count: number };

export type FromWorker =
  | { type: 'ready'; port: number }
  | { type: 'received'; count: number }
  | { type: 'result'; count: number; ms: number; p50: number; p99: number; peakRss: number }
  | { type: 'sent'; errors: number };
