/**
 * Turning refusals an attacker can multiply into few, countable reports: the
 * first of a key (an inbound source, an outbound destination and code) in an
 * interval is reported at once, the rest are summed and reported once the
 * interval has passed. Used inbound (refused or evicted connections, peers
 * past maxPeers: inbound/server.ts) and outbound (frames refused by a cap or
 * the allow-list: transport.ts).
 *
 * Pure: no timers, time is passed in.
 */

/** One report of refusals: a key (a source, a destination), how many, and why. */
export interface RefusalReport {
  /** The source (see `sourceOf`) or destination, or `'*'` for keys past the per-interval budget. */
  source: string;
  count: number;
  reasons: Record<string, number>;
}

interface PendingReport {
  count: number;
  reasons: Record<string, number>;
}

/**
 * Turns refusals into at most one report per source per interval: the first
 * refusal of a source in an interval is reported at once (count 1), the rest
 * are summed and reported by `flush` once the interval has passed. Past
 * `maxSources` distinct sources in one interval, the others are summed
 * under `'*'`, so a distributed attacker cannot turn the log into a flood.
 */
export class RefusalLog {
  /** Sources reported in the current interval, with what is still to report. */
  private pending = new Map<string, PendingReport>();
  private intervalStart: number | undefined;

  constructor (private readonly interval: number, private readonly maxSources: number) {}

  /**
   * Notes `count` refusals; returns the report to emit now (the first for
   * this source in the interval), or undefined when it is held for `flush`.
   */
  note (source: string, reason: string, now: number, count = 1): RefusalReport | undefined {
    if (this.intervalStart === undefined) this.intervalStart = now;
    let key = source;
    let entry = this.pending.get(key);
    if (entry === undefined && this.pending.size >= this.maxSources) {
      key = '*';
      entry = this.pending.get(key);
    }
    if (entry === undefined) {
      this.pending.set(key, { count: 0, reasons: {} });
      return { source: key, count, reasons: { [reason]: count } };
    }
    entry.count += count;
    entry.reasons[reason] = (entry.reasons[reason] ?? 0) + count;
    return undefined;
  }

  /**
   * Once the interval has passed: the held counts, one report per source. A
   * source that was still refused stays held through the next interval (its
   * next refusal waits for the next flush), so a steady attack yields one
   * report per source per interval; a source quiet for a whole interval is
   * forgotten, and its next refusal is reported at once again.
   */
  flush (now: number): RefusalReport[] {
    if (this.intervalStart === undefined || now - this.intervalStart < this.interval) return [];
    const reports: RefusalReport[] = [];
    const held = new Map<string, PendingReport>();
    for (const [source, entry] of this.pending) {
      if (entry.count === 0) continue;
      reports.push({ source, count: entry.count, reasons: entry.reasons });
      held.set(source, { count: 0, reasons: {} });
    }
    this.pending = held;
    this.intervalStart = held.size > 0 ? now : undefined;
    return reports;
  }
}
