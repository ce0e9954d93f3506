/**
 * Who may open an inbound connection, decided before a single byte is read
 * (so before any TLS handshake), and whom to evict at the global cap.
 *
 * Work-conserving: a source may use any capacity nobody else wants. The
 * per-source limits (connections held, new connections a second) bite only
 * under contention, and then each source gets its share:
 *
 * - slots are contended once the node holds `CONTENDED_AT` (3/4) of
 *   `maxConnections`;
 * - handshake CPU is contended (TLS only) when `handshakeBacklog`
 *   connections are in their handshake and more than one source is among them;
 * - contention is held for `CONTENTION_HOLD` ms after it was last seen, so a
 *   flood that churns around a threshold cannot slip through between its
 *   connections.
 *
 * Under contention a source holding the larger of `maxPerSource` and an equal
 * share of `maxConnections` among the sources holding connections is refused
 * ('source-connections'), and so is a source whose token bucket is empty
 * ('source-rate'). Buckets are drawn on by every admission, contended or not
 * (never below empty), so the sources that used the most when the node was
 * idle are the first held back when it is not. A node alone with one busy
 * peer (a cluster on one host, a load test) is never contended by it: that
 * source is all there is to serve.
 *
 * Pure: no sockets, no timers, and time is always passed in, so every rule is
 * unit-tested with plain values. A source is an IPv4 address or an IPv6 /64
 * (src/net/addresses.ts, `sourceOf`).
 */
import { sourceGroups } from '../net/addresses';

/** Fraction of maxConnections held from which slots are contended. */
export const CONTENDED_AT = 3 / 4;
/** How long contention, once seen, keeps the per-source limits on (ms). */
export const CONTENTION_HOLD = 1000;

/** Limits of one source. */
export interface AdmissionLimits {
  /** Connections one source may hold at once under contention (at least; see the class comment). */
  maxPerSource: number;
  /** New connections per second one source may open under contention, sustained; bursts up to one second's worth. */
  ratePerSource: number;
  /** Sources remembered at once (those holding connections always are). */
  maxSources: number;
  /** The node's cap on connections held (maxConnections): contention is judged against it. */
  maxConnections: number;
  /**
   * Connections in their handshake, from more than one source, that make
   * handshake CPU contended; undefined: never (plain mode has no handshake).
   */
  handshakeBacklog?: number | undefined;
}

/** Why a connection was refused before it was read from. */
export type AdmissionRefusal = 'source-connections' | 'source-rate';

interface SourceState {
  /** Connections held now. */
  open: number;
  /** Of those, connections still in their handshake (admitted, not yet open). */
  pending: number;
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
  /** Connections held, over every source. */
  private open = 0;
  /** Connections in their handshake, over every source. */
  private pending = 0;
  /** Sources holding at least one connection, and those with one in its handshake. */
  private holding = 0;
  private handshaking = 0;
  /** Contention seen last until then (ms); see CONTENTION_HOLD. */
  private contendedUntil = -Infinity;
  private readonly contendedAt: number;

  constructor (private readonly limits: AdmissionLimits) {
    this.contendedAt = Math.max(1, Math.ceil(limits.maxConnections * CONTENDED_AT));
  }

  /** Sources remembered now. */
  get size (): number {
    return this.sources.size;
  }

  /** Connections held now, over every source. */
  get held (): number {
    return this.open;
  }

  /** Connections `source` holds now. */
  openBy (source: string): number {
    return this.sources.get(source)?.open ?? 0;
  }

  /** True when the per-source limits apply at `now` (see the class comment). */
  contended (now: number): boolean {
    const backlog = this.limits.handshakeBacklog;
    if (this.open >= this.contendedAt || (backlog !== undefined && this.pending >= backlog && this.handshaking > 1)) {
      this.contendedUntil = now + CONTENTION_HOLD;
    }
    return now < this.contendedUntil;
  }

  /**
   * May `source` open one more connection at `now` (ms)? When it may, a token
   * is taken (if the bucket has one) and the connection counted, as in its
   * handshake: call `opened` when it is open, `release` when it closes.
   */
  admit (source: string, now: number): AdmissionRefusal | undefined {
    const { maxPerSource, ratePerSource, maxConnections } = this.limits;
    let state = this.sources.get(source);
    if (state === undefined) {
      this.makeRoom();
      state = { open: 0, pending: 0, tokens: ratePerSource, at: now };
    } else {
      // Seen again: move to the back, so the table forgets the least recently seen first.
      this.sources.delete(source);
      // Time never runs backwards here: a clock stepped back must not drain every bucket.
      if (ratePerSource !== Infinity) state.tokens = Math.min(ratePerSource, state.tokens + Math.max(0, now - state.at) * ratePerSource / 1000);
      state.at = now;
    }
    this.sources.set(source, state);
    if (this.contended(now)) {
      // An equal share among the sources holding connections (this one
      // included), never less than maxPerSource: few sources may each hold
      // more than many can.
      const sharing = this.holding + (state.open === 0 ? 1 : 0);
      if (state.open >= Math.max(maxPerSource, Math.floor(maxConnections / sharing))) return 'source-connections';
      if (state.tokens < 1) return 'source-rate';
    }
    if (state.tokens >= 1) state.tokens -= 1;
    if (state.open++ === 0) this.holding++;
    if (state.pending++ === 0) this.handshaking++;
    this.open++;
    this.pending++;
    return undefined;
  }

  /** A connection admitted for `source` has finished its handshake (or read its first byte). */
  opened (source: string): void {
    const state = this.sources.get(source);
    if (state === undefined || state.pending === 0) return;
    if (--state.pending === 0) this.handshaking--;
    this.pending--;
  }

  /** A connection admitted for `source` has closed; `pending`: before it was open. */
  release (source: string, pending = false): void {
    const state = this.sources.get(source);
    if (state === undefined || state.open === 0) return;
    if (pending) this.opened(source);
    if (--state.open === 0) this.holding--;
    this.open--;
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
  /** When it was admitted (ms). */
  acceptedAt: number;
  /** When it last sent a byte (ms). */
  lastActive: number;
  /** When its unfinished frame started (ms), or 0 when it is between frames. */
  frameStarted: number;
  /** Frames it has delivered: what proves it useful. */
  framesDelivered: number;
}

/**
 * The connection to close to make room at the global cap: what has proven
 * least.
 *
 * 1. Connections that have delivered no frame (in mutual TLS, every
 *    connection not yet authenticated is one) go before connections that
 *    have delivered frames.
 * 2. Among those, the source with the largest share of them goes first,
 *    sources grouped hierarchically: an IPv6 source is compared by its /48
 *    first, then its /56, then its /64, so one allocation holding many
 *    connections from many /64s counts as the one party it is. (A source
 *    holding fewer is never chosen over one holding more.)
 * 3. Within that source: a connection that delivered nothing, the one held
 *    longest (a legitimate frame arrives within milliseconds of the connect;
 *    a connection dripping one holds its slot for seconds); a connection
 *    that delivered frames, its longest-idle one between frames first, else
 *    its oldest unfinished frame.
 */
export function chooseVictim<C extends EvictionCandidate> (connections: Iterable<C>): C | undefined {
  const all = [...connections];
  if (all.length === 0) return undefined;
  const unproven = all.filter((c) => c.framesDelivered === 0);
  const pool = unproven.length > 0 ? unproven : all;
  const groupsOf = new Map<string, readonly string[]>();
  const counts = new Map<string, number>();
  for (const conn of pool) {
    let groups = groupsOf.get(conn.source);
    if (groups === undefined) groupsOf.set(conn.source, groups = sourceGroups(conn.source));
    groups.forEach((group, level) => {
      const key = `${level} ${group}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    });
  }
  const shares = (conn: C): number[] => groupsOf.get(conn.source)!.map((group, level) => counts.get(`${level} ${group}`)!);
  let victim = pool[0]!;
  let victimShares = shares(victim);
  for (let i = 1; i < pool.length; i++) {
    const conn = pool[i]!;
    const connShares = shares(conn);
    const order = compareShares(connShares, victimShares);
    if (order > 0 || (order === 0 && before(conn, victim))) {
      victim = conn;
      victimShares = connShares;
    }
  }
  return victim;
}

/** Coarsest group first: positive when `a` holds more. */
function compareShares (a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** True when `a` should be evicted before `b` (same proof, same shares). */
function before (a: EvictionCandidate, b: EvictionCandidate): boolean {
  if (a.framesDelivered === 0) return a.acceptedAt < b.acceptedAt;
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
