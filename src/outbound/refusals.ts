/**
 * Outbound refusals an attacker can multiply, aggregated like the inbound
 * ones (src/refusal-log.ts): a frame refused by a cap, by the memory budget,
 * by backpressure or by the allow-list, or given up when its connection gave
 * way at a cap. A reflection flood makes one per frame (21,105 in 15 s
 * before this), so:
 *
 * - the first refusal of a destination (host and port as dialled) and code
 *   in an interval is reported at once, as it is;
 * - the rest are held and summed, frame counts included, and reported once
 *   the interval has passed as one error of the same code with `count`,
 *   `reasons` and the summed `framesDropped` / `framesWritten` / `framesLost`
 *   (so a sender can still account for every frame);
 * - past `maxKeys` destinations in one interval, the others are summed
 *   under the destination `'*'`;
 * - every refusal is counted as it happens (stats().errors by code, and
 *   stats().outbound.refusals by cause), reported or held.
 *
 * Pure: no timers; the transport calls `flush` (and `flush(now, true)` at close()).
 */
import { TransportError, type ErrorCode } from '../errors';

/** The codes aggregated here. */
export const AGGREGATED_CODES: ReadonlySet<string> = new Set<ErrorCode>(['ERR_OUTBOUND_LIMIT', 'ERR_DESTINATION_REFUSED', 'ERR_BACKPRESSURE']);

/** A summary of refusals held over an interval: one destination, one code. */
export class OutboundRefusalsError extends TransportError {
  /** Refusals summed in this report. */
  readonly count: number;
  /** `count` by cause (the cap's option name, 'evicted', 'not-allowed', 'backpressure'). */
  readonly reasons: Record<string, number>;
  framesDropped?: number;
  framesWritten?: number;
  framesLost?: number;

  constructor (code: ErrorCode, destination: string, held: Held) {
    const why = Object.entries(held.reasons).map(([reason, n]) => `${reason}: ${n}`).join(', ');
    super(code, `${held.count} more outbound frame(s) to ${destination} refused or given up (${why}); summed since the last report`, held.remote);
    this.count = held.count;
    this.reasons = held.reasons;
    if (held.framesDropped > 0) this.framesDropped = held.framesDropped;
    if (held.framesWritten > 0) {
      this.framesWritten = held.framesWritten;
      this.framesLost = held.framesLost;
    }
  }
}

interface Held {
  count: number;
  reasons: Record<string, number>;
  framesDropped: number;
  framesWritten: number;
  framesLost: number;
  /** Address, port and peer id of the latest one, for the summary. */
  remote: { remoteAddress?: string; remotePort?: number; peerId?: string };
}

type Refusal = Error & {
  code?: string;
  limit?: string;
  evicted?: string;
  remoteAddress?: string;
  remotePort?: number;
  peerId?: string;
  framesDropped?: number;
  framesWritten?: number;
  framesLost?: number;
};

/** Why a refusal happened, for stats().outbound.refusals. */
export function reasonOf (error: Error): string {
  const e = error as Refusal;
  if (e.code === 'ERR_OUTBOUND_LIMIT') return e.evicted !== undefined ? 'evicted' : e.limit ?? 'limit';
  if (e.code === 'ERR_DESTINATION_REFUSED') return 'not-allowed';
  return 'backpressure';
}

export class OutboundRefusals {
  /** Keys reported in the current interval, with what is held for the next report. */
  #held = new Map<string, Held>();
  #intervalStart: number | undefined;

  constructor (private readonly interval: number, private readonly maxKeys: number) {}

  /** True while refusals are held for a later report (the transport keeps a flush timer then). */
  get holding (): boolean {
    for (const held of this.#held.values()) if (held.count > 0) return true;
    return false;
  }

  /** Notes one refusal; returns true when it is to be reported now (the first of its key in the interval). */
  note (error: Error, now: number): boolean {
    const e = error as Refusal;
    if (this.#intervalStart === undefined) this.#intervalStart = now;
    let key = `${e.code} ${e.remoteAddress ?? '?'}:${e.remotePort ?? '?'}`;
    let held = this.#held.get(key);
    if (held === undefined && this.#held.size >= this.maxKeys) {
      key = `${e.code} *`;
      held = this.#held.get(key);
    }
    if (held === undefined) {
      this.#held.set(key, { count: 0, reasons: {}, framesDropped: 0, framesWritten: 0, framesLost: 0, remote: {} });
      return true;
    }
    held.count++;
    const reason = reasonOf(error);
    held.reasons[reason] = (held.reasons[reason] ?? 0) + 1;
    held.framesDropped += e.framesDropped ?? 0;
    held.framesWritten += e.framesWritten ?? 0;
    held.framesLost += e.framesLost ?? 0;
    held.remote = key.endsWith(' *') ? {} : { remoteAddress: e.remoteAddress, remotePort: e.remotePort, peerId: e.peerId };
    return false;
  }

  /**
   * Once the interval has passed (or at once with `force`): one summary per
   * key that held refusals. A key still refused stays, so its next refusal
   * waits for the next flush; a key quiet for a whole interval is forgotten.
   */
  flush (now: number, force = false): OutboundRefusalsError[] {
    if (this.#intervalStart === undefined || (!force && now - this.#intervalStart < this.interval)) return [];
    const reports: OutboundRefusalsError[] = [];
    const next = new Map<string, Held>();
    for (const [key, held] of this.#held) {
      if (held.count === 0) continue;
      const space = key.indexOf(' ');
      reports.push(new OutboundRefusalsError(key.slice(0, space) as ErrorCode, key.slice(space + 1), held));
      if (!force) next.set(key, { count: 0, reasons: {}, framesDropped: 0, framesWritten: 0, framesLost: 0, remote: {} });
    }
    this.#held = next;
    this.#intervalStart = next.size > 0 ? now : undefined;
    return reports;
  }
}
