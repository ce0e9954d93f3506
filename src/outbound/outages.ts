/**
 * Destinations that cannot be reached, reported once per outage rather than
 * once per send. gossipmonger keeps asking a seed that is down, and a peer it
 * takes for dead, every round or so: each attempt fails the same way
 * (ECONNREFUSED, ERR_CONNECT_TIMEOUT...), and a log line per attempt buries
 * everything else.
 *
 * Per destination (as dialled, `host:port`) and code: the first failure is
 * reported at once (`count` 1); the next ones are counted in
 * `stats().errors` as they happen and reported together once a minute while
 * the outage lasts (`count`, frame counts summed: the frames stay
 * accounted for), and when the destination answers again. Only failures to
 * open a connection, before any frame was written: a connection that breaks
 * with frames on it is reported on its own, with what it may have lost.
 */
import { FailureLog, type Countable } from './failure-log';

/** How often an outage in progress is reported (ms). */
export const OUTAGE_REPORT_INTERVAL = 60000;
/** Destinations with reports of their own per interval; the rest are summed. */
const OUTAGES_REPORTED = 64;
/** How often held failures are looked at (ms): an outage that ended is reported within this. */
const FLUSH_TICK = 1000;

/** Failures to open a connection that say the destination is down or unreachable. */
const UNREACHABLE = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT',
  'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'ERR_CONNECT_TIMEOUT'
]);

export interface OutageSink {
  /** Counts and emits an error (the first of an outage, and every other failure). */
  report (error: Error): void;
  /** Emits an error whose failures were each counted already (a held report). */
  emit (error: Error): void;
  /** Counts one failure held for a later report. */
  count (code: string): void;
}

type Failure = Countable & { code?: unknown; remoteAddress?: unknown; remotePort?: unknown };

export class Outages {
  readonly #log: FailureLog;
  #timer: NodeJS.Timeout | undefined;

  constructor (private readonly sink: OutageSink, interval = OUTAGE_REPORT_INTERVAL, private readonly now: () => number = () => performance.now()) {
    this.#log = new FailureLog(interval, OUTAGES_REPORTED);
  }

  /** Destinations in an outage, or reported within the last interval. */
  get size (): number {
    return this.#log.size;
  }

  /** An error from the send path: reported now, or held when it repeats an outage in progress. */
  report (error: Error): void {
    const failure = error as Failure;
    const code = failure.code;
    if (typeof code !== 'string' || !UNREACHABLE.has(code) || failure.framesWritten !== undefined || typeof failure.remoteAddress !== 'string') {
      this.sink.report(error);
      return;
    }
    const now = this.now();
    const first = this.#log.note(`${code} ${failure.remoteAddress}:${String(failure.remotePort)}`, failure, now);
    if (first !== undefined) this.sink.report(first);
    else this.sink.count(code);
    this.#arm();
  }

  /** A connection to `host:port` was accepted: any outage of that destination is over. */
  reached (host: string, port: number): void {
    if (this.#log.size === 0) return;
    for (const code of UNREACHABLE) this.#log.end(`${code} ${host}:${port}`);
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
