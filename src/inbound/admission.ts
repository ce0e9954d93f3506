/**
 * Who may open an inbound connection, decided before a single byte is read
 * (so before any TLS handshake): per-source connection caps, a per-source
 * token bucket of new connections, the choice of whom to evict at the global
 * cap, and the aggregation of refusals into few, countable reports.
 *
 * Pure: no sockets, no timers, and time is always passed in, so every rule is
 * unit-tested with plain values. A source is an IPv4 address or an IPv6 /64
 * (src/net/addresses.ts, `sourceOf`).
 */

/** Limits of one source. */
export interface AdmissionLimits {
  /** Connections one source may hold at once. */
  maxPerSource: number;
  /** New connections per second one source may open, sustained; bursts up to one second's worth. */
  ratePerSource: number;
  /** Sources remembered at once (those holding connections always are). */
  maxSources: number;
}

/** Why a connection was refused before it was read from. */
export type AdmissionRefusal = 'source-connections' | 'source-rate';

interface SourceState {
  /** Connections held now. */
  open: number;
  /** Tokens in the bucket when it was last looked at. */
  tokens: number;
  /** When `tokens` was computed (ms). */
  at: number;
}

/**
 * Per-source bookkeeping. The table is bounded: a source holding no
 * connection whose bucket has refilled carries no information and is
 * forgotten by `sweep`; past `maxSources`, the least recently seen idle
 * sources are forgotten first. (Forgetting a source early only refills its
 * bucket: it never lets anyone hold more connections.)
 */
export class Admission {
  private readonly sources = new Map<string, SourceState>();

  constructor (private readonly limits: AdmissionLimits) {}

  /** Sources remembered now. */
  get size (): number {
    return this.sources.size;
  }

  /** Connections `source` holds now. */
  openBy (source: string): number {
    return this.sources.get(source)?.open ?? 0;
  }

  /**
   * May `source` open one more connection at `now` (ms)? When it may, a token
   * is taken and the connection counted: call `release` when it closes.
   */
  admit (source: string, now: number): AdmissionRefusal | undefined {
    const { maxPerSource, ratePerSource } = this.limits;
    let state = this.sources.get(source);
    if (state === undefined) {
      this.makeRoom();
      state = { open: 0, tokens: ratePerSource, at: now };
    } else {
      // Seen again: move to the back, so the table forgets the least recently seen first.
      this.sources.delete(source);
      // Time never runs backwards here: a clock stepped back must not drain every bucket.
      if (ratePerSource !== Infinity) state.tokens = Math.min(ratePerSource, state.tokens + Math.max(0, now - state.at) * ratePerSource / 1000);
      state.at = now;
    }
    this.sources.set(source, state);
    if (state.open >= maxPerSource) return 'source-connections';
    if (state.tokens < 1) return 'source-rate';
    state.tokens -= 1;
    state.open++;
    return undefined;
  }

  /** A connection admitted for `source` has closed. */
  release (source: string): void {
    const state = this.sources.get(source);
    if (state !== undefined && state.open > 0) state.open--;
  }

  /** Forgets sources that hold nothing and whose bucket is full again at `now`. */
  sweep (now: number): void {
    const rate = this.limits.ratePerSource;
    for (const [source, state] of this.sources) {
      if (state.open === 0 && (rate === Infinity || state.tokens + (now - state.at) * rate / 1000 >= rate)) this.sources.delete(source);
    }
  }

  private makeRoom (): void {
    if (this.sources.size < this.limits.maxSources) return;
    for (const [source, state] of this.sources) {
      if (state.open === 0) {
        this.sources.delete(source);
        if (this.sources.size < this.limits.maxSources) return;
      }
    }
  }
}

/** What eviction needs to know about a held connection. */
export interface EvictionCandidate {
  source: string;
  /** When it last sent a byte (ms). */
  lastActive: number;
  /** When its unfinished frame started (ms), or 0 when it is between frames. */
  frameStarted: number;
}

/**
 * The connection to close to make room at the global cap: one of the source
 * holding the most connections (a source holding fewer is never chosen),
 * its longest-idle connection between frames first, else its oldest
 * unfinished frame. Among sources tied for the most, the best such
 * connection overall. `openBy` gives each source's connection count.
 */
export function chooseVictim<C extends EvictionCandidate> (connections: Iterable<C>, openBy: (source: string) => number): C | undefined {
  let victim: C | undefined;
  let victimCount = 0;
  for (const conn of connections) {
    const count = openBy(conn.source);
    if (victim === undefined || count > victimCount || (count === victimCount && before(conn, victim))) {
      victim = conn;
      victimCount = count;
    }
  }
  return victim;
}

/** True when `a` should be evicted before `b` (same source count). */
function before (a: EvictionCandidate, b: EvictionCandidate): boolean {
  const aIdle = a.frameStarted === 0;
  const bIdle = b.frameStarted === 0;
  if (aIdle !== bIdle) return aIdle;
  return aIdle ? a.lastActive < b.lastActive : a.frameStarted < b.frameStarted;
}

/** One report of refusals: a source, how many, and why. */
export interface RefusalReport {
  /** The source (see `sourceOf`), or `'*'` for sources past the per-interval budget. */
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
