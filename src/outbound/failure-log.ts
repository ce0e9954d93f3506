/**
 * Repeated failures of one kind, reported once per interval per key: the
 * pattern of a send path that fails the same way every gossip round (a seed
 * that is down answers ECONNREFUSED once a second, forever).
 *
 * The first failure of a key is reported at once, with `count` 1. Later ones
 * are held: counted, their frame counts summed, the latest error kept. Once
 * `interval` ms have passed since the key's last report, `flush` reports what
 * is held as one error: the latest, with `count` (the failures it stands for)
 * and the summed frame counts, so that a sender still accounts for every
 * frame. A key quiet for a whole interval is forgotten; `end(key)` forgets it
 * sooner (the condition is over: what is held goes out at the next flush),
 * and either way its next failure is reported at once again.
 *
 * Pure bookkeeping, no timer and no clock of its own: the caller passes
 * `now` and flushes (outages.ts does, for unreachable destinations). Keyed
 * by whatever the caller chooses, so other repeated outbound failures (a
 * refused outbound cap, say) can be aggregated the same way. Past `maxKeys`
 * keys with a report of their own, new keys share one entry, `overflowKey`,
 * so a flood of distinct destinations cannot turn into a flood of reports.
 */
import type { FrameCounts } from '../errors';

/** An error as the log handles it: frame counts, and `count` once reported. */
export type Countable = Error & FrameCounts & { count?: number };

interface Entry {
  /** When this key was last reported (the caller's clock). */
  reportedAt: number;
  /** Failures held since then, the latest of them, and their summed frame counts. */
  held: number;
  latest: Countable | undefined;
  framesDropped: number;
  framesWritten: number;
  framesLost: number;
  /** Distinct keys folded into this one (the overflow entry only). */
  keys: Set<string> | undefined;
  /** end() was called: report what is held at the next flush, then forget. */
  ended: boolean;
}

export class FailureLog {
  readonly #entries = new Map<string, Entry>();

  /** `interval` in the caller's clock (ms); `maxKeys` keys with reports of their own. */
  constructor (
    private readonly interval: number,
    private readonly maxKeys: number,
    private readonly overflowKey = '*'
  ) {}

  /** True while a failure is held: the caller should keep flushing. */
  get holding (): boolean {
    for (const entry of this.#entries.values()) if (entry.held > 0) return true;
    return false;
  }

  /** Keys being tracked (an outage in progress, or recently reported). */
  get size (): number {
    return this.#entries.size;
  }

  /**
   * Notes one failure; returns it to report now (the first of its key, with
   * `count` 1), or undefined when it is held for `flush`.
   */
  note (key: string, error: Countable, now: number): Countable | undefined {
    let entry = this.#entries.get(key);
    if (entry === undefined && this.#entries.size >= this.maxKeys) {
      const overflow = this.#entries.get(this.overflowKey);
      if (overflow !== undefined) {
        overflow.keys?.add(key);
        this.#hold(overflow, error);
        return undefined;
      }
      entry = this.#newEntry(now);
      entry.keys = new Set([key]);
      this.#entries.set(this.overflowKey, entry);
      error.count = 1;
      return error;
    }
    if (entry === undefined || entry.ended) {
      // A new outage (or one that had ended and fails again): at once. An
      // ended entry still holding failures keeps them for the next flush.
      if (entry === undefined) this.#entries.set(key, this.#newEntry(now));
      else {
        entry.ended = false;
        if (entry.held === 0) entry.reportedAt = now;
        else {
          this.#hold(entry, error);
          return undefined;
        }
      }
      error.count = 1;
      return error;
    }
    this.#hold(entry, error);
    return undefined;
  }

  /** The condition is over for `key` (the destination answered). */
  end (key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    if (entry.held === 0) this.#entries.delete(key);
    else entry.ended = true;
  }

  /**
   * Reports what is held for each key whose interval has passed since its
   * last report, or whose condition has ended; forgets keys quiet for a
   * whole interval.
   */
  flush (now: number): Countable[] {
    const reports: Countable[] = [];
    for (const [key, entry] of this.#entries) {
      const due = entry.ended || now - entry.reportedAt >= this.interval;
      if (!due) continue;
      if (entry.held === 0) {
        this.#entries.delete(key);
        continue;
      }
      reports.push(this.#summary(entry, now));
      if (entry.ended) this.#entries.delete(key);
      else this.#reset(entry, now);
    }
    return reports;
  }

  /** Everything held, reported now (the transport is closing); the log is emptied. */
  drain (now: number): Countable[] {
    const reports: Countable[] = [];
    for (const entry of this.#entries.values()) if (entry.held > 0) reports.push(this.#summary(entry, now));
    this.#entries.clear();
    return reports;
  }

  #newEntry (now: number): Entry {
    return { reportedAt: now, held: 0, latest: undefined, framesDropped: 0, framesWritten: 0, framesLost: 0, keys: undefined, ended: false };
  }

  #hold (entry: Entry, error: Countable): void {
    entry.held++;
    entry.latest = error;
    entry.framesDropped += error.framesDropped ?? 0;
    entry.framesWritten += error.framesWritten ?? 0;
    entry.framesLost += error.framesLost ?? 0;
  }

  #reset (entry: Entry, now: number): void {
    entry.reportedAt = now;
    entry.held = 0;
    entry.latest = undefined;
    entry.framesDropped = entry.framesWritten = entry.framesLost = 0;
    if (entry.keys !== undefined) entry.keys.clear();
  }

  /** The latest held error, standing for every failure held: count, summed frames, and a message that says so. */
  #summary (entry: Entry, now: number): Countable {
    const error = entry.latest!;
    error.count = entry.held;
    // Only the counts the failures carried: an error that never has a count keeps none.
    if (entry.framesDropped > 0 || error.framesDropped !== undefined) error.framesDropped = entry.framesDropped;
    if (entry.framesWritten > 0 || error.framesWritten !== undefined) error.framesWritten = entry.framesWritten;
    if (entry.framesLost > 0 || error.framesLost !== undefined) error.framesLost = entry.framesLost;
    const seconds = Math.max(1, Math.round((now - entry.reportedAt) / 1000));
    const where = entry.keys === undefined ? '' : ` to ${entry.keys.size} destination(s) past the first ${this.maxKeys}`;
    error.message = `${error.message} (${entry.held} time(s)${where} in the last ${seconds} s${entry.ended ? '; it answers again' : ''})`;
    return error;
  }
}
