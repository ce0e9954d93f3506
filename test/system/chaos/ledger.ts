/**
 * The ledger behind "nothing lost unreported": for each sender and
 * destination it counts frames the sender's transport accepted, frames the
 * destination delivered as events, and frames the sender's errors account
 * for. Every frame must be delivered or reported:
 *
 *   certain  = framesDropped + framesLost          (never reached the kernel)
 *   maybe    = framesWritten - framesLost          (reached the kernel, then the connection broke)
 *   missing  = sent - delivered - certain
 *
 * and the books balance when 0 <= missing <= maybe: a frame may have died in
 * a kernel buffer of a connection that reported breaking, but never on a
 * connection that said nothing. `delivered > sent - certain` (missing < 0)
 * would mean a frame reported lost was delivered after all, or counted twice.
 */

/** The frame counts an error carries (see the transport's FrameCounts). */
export interface ReportedError {
  code?: string | undefined;
  framesDropped?: number | undefined;
  framesWritten?: number | undefined;
  framesLost?: number | undefined;
}

export interface LedgerRow {
  from: string;
  to: string;
  sent: number;
  delivered: number;
  certain: number;
  maybe: number;
  /** sent - delivered - certain */
  missing: number;
  /** Errors toward this destination that carried no frame count at all. */
  uncounted: number;
  /** The sender was killed; `missing` may have died with it. */
  crashed: boolean;
  balanced: boolean;
}

interface Account { sent: number; delivered: number; certain: number; maybe: number; uncounted: number }

export class Ledger {
  private readonly accounts = new Map<string, Account>();
  private readonly crashedSenders = new Set<string>();

  private account (from: string, to: string): Account {
    const key = `${from}\u0000${to}`;
    let account = this.accounts.get(key);
    if (account === undefined) {
      account = { sent: 0, delivered: 0, certain: 0, maybe: 0, uncounted: 0 };
      this.accounts.set(key, account);
    }
    return account;
  }

  /** `from`'s transport accepted `n` frames for `to`. */
  sent (from: string, to: string, n = 1): void {
    this.account(from, to).sent += n;
  }

  /** `to` emitted an event for a frame whose sender is `from`. */
  delivered (from: string, to: string, n = 1): void {
    this.account(from, to).delivered += n;
  }

  /** `from`'s transport emitted `error` for a send to `to`. */
  reported (from: string, to: string, error: ReportedError): void {
    const account = this.account(from, to);
    const dropped = error.framesDropped ?? 0;
    const written = error.framesWritten ?? 0;
    const lost = Math.min(error.framesLost ?? 0, written);
    if (error.framesDropped === undefined && error.framesWritten === undefined && error.framesLost === undefined) account.uncounted++;
    account.certain += dropped + lost;
    account.maybe += written - lost;
  }

  /**
   * `from` was killed: frames it had accepted and not yet written died with
   * it, and no process is left to report them. Its accounts balance when
   * nothing was delivered twice (missing >= 0); what is missing is shown as
   * died-with-sender, never hidden in `maybe`. Name senders per incarnation
   * (`host-3#2`) so that a restarted process starts clean books.
   */
  crashed (from: string): void {
    this.crashedSenders.add(from);
  }

  rows (): LedgerRow[] {
    const rows: LedgerRow[] = [];
    for (const [key, a] of this.accounts) {
      const [from, to] = key.split('\u0000') as [string, string];
      const missing = a.sent - a.delivered - a.certain;
      const crashed = this.crashedSenders.has(from);
      rows.push({ from, to, ...a, missing, crashed, balanced: missing >= 0 && (crashed || missing <= a.maybe) });
    }
    return rows.sort((x, y) => x.from.localeCompare(y.from) || x.to.localeCompare(y.to));
  }

  /** Totals over every pair, and the pairs that do not balance. */
  totals (): { sent: number; delivered: number; certain: number; maybe: number; missing: number; uncounted: number; unbalanced: LedgerRow[] } {
    const rows = this.rows();
    const sum = (key: 'sent' | 'delivered' | 'certain' | 'maybe' | 'missing' | 'uncounted'): number => rows.reduce((n, row) => n + row[key], 0);
    return {
      sent: sum('sent'),
      delivered: sum('delivered'),
      certain: sum('certain'),
      maybe: sum('maybe'),
      missing: sum('missing'),
      uncounted: sum('uncounted'),
      unbalanced: rows.filter((row) => !row.balanced)
    };
  }
}
