/**
 * Outbound refusals an attacker can multiply, reported once per destination
 * and code per interval, like the inbound ones: a frame refused by a cap
 * (`ERR_OUTBOUND_LIMIT`: slots, per destination, pooled remotes, the memory
 * budget), by backpressure, or by the allow-list, or given up when its
 * connection gave way to another destination at a cap. A reflection flood
 * made one per frame (21,105 in 15 s before this).
 *
 * The first refusal of a destination (as dialled, `host:port`) and code is
 * reported at once (`count` 1); later ones are counted as they happen
 * (stats().errors by code, stats().outbound.refusals by cause) and held, and
 * once `interval` has passed they are reported together as one error with
 * `count` and their summed frame counts (failure-log.ts), so that a sender
 * still accounts for every frame. Past 64 destinations in an interval, the
 * others share one report. `drain` reports what is held at close().
 */
import { FailureLog, type Countable } from './failure-log';

/** How often refusals of one destination and code are reported at most (ms). */
export const REFUSAL_REPORT_INTERVAL = 10000;
/** Destinations with reports of their own per interval; the rest are summed. */
const DESTINATIONS_REPORTED = 64;
/** How often held refusals are looked at (ms). */
const FLUSH_TICK = 1000;

/** The codes aggregated here. */
const REFUSALS = new Set(['ERR_OUTBOUND_LIMIT', 'ERR_DESTINATION_REFUSED', 'ERR_BACKPRESSURE']);

type Refusal = Countable & { code?: unknown; limit?: string; evicted?: string; remoteAddress?: unknown; remotePort?: unknown };

export interface RefusalSink {
  /** Counts and emits an error (the first refusal of a key). */
  report (error: Error): void;
  /** Emits an error whose refusals were each counted already (a held report). */
  emit (error: Error): void;
  /** Counts one refusal held for a later report. */
  count (code: string): void;
}

/** True for an error this module aggregates. */
export function isRefusal (error: Error): boolean {
  const code = (error as Refusal).code;
  return typeof code === 'string' && REFUSALS.has(code);
}

/** Why a frame was refused, for stats().outbound.refusals. */
export function reasonOf (error: Error): string {
  const e = error as Refusal;
  if (e.code === 'ERR_OUTBOUND_LIMIT') return e.evicted !== undefined ? 'evicted' : e.limit ?? 'limit';
  if (e.code === 'ERR_DESTINATION_REFUSED') return 'not-allowed';
  return 'backpressure';
}

export class OutboundRefusals {
  readonly #log: FailureLog;
  #timer: NodeJS.Timeout | undefined;
  /** Every refusal, by cause (`reasonOf`). */
  readonly byReason: Record<string, number> = {};

  constructor (private readonly sink: RefusalSink, interval = REFUSAL_REPORT_INTERVAL, private readonly now: () => number = () => performance.now()) {
    this.#log = new FailureLog(interval, DESTINATIONS_REPORTED);
  }

  /** A refusal (see `isRefusal`): counted, and reported now or held. */
  report (error: Error): void {
    const refusal = error as Refusal;
    const code = refusal.code as string;
    const reason = reasonOf(error);
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
    const first = this.#log.note(`${code} ${String(refusal.remoteAddress)}:${String(refusal.remotePort)}`, refusal, this.now());
    if (first !== undefined) this.sink.report(first);
    else {
      this.sink.count(code);
      this.#arm();
    }
  }

  /** The transport is closing: everything held is reported now, and the timer stops. */
  drain (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const error of this.#log.drain(this.now())) this.sink.emit(error);
  }

  #arm (): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      for (const error of this.#log.flush(this.now())) this.sink.emit(error);
      if (this.#log.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    }, FLUSH_TICK);
    this.#timer.unref();
  }
}
