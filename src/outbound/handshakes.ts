/**
 * A bound on outbound TLS handshakes in progress (`outbound.maxHandshakes`),
 * shared by pooled and per-message sends.
 *
 * A handshake costs a few milliseconds of CPU on each side. Started all at
 * once, a burst of them (a node joining a cluster, every peer answering one
 * digest) shares the CPU until each takes longer than `connectTimeout`: the
 * dials fail, their work is wasted, and gossip dials again. Past the bound
 * a dial waits, first come first served, before it opens a socket; its
 * `connectTimeout` starts when it does. What waits is bounded by
 * `outbound.maxConnections` (a waiting dial holds its outbound slot) and by
 * the queue limits of the pool.
 *
 * A handshake holds its slot until it settles, or for `lease` ms at most (a
 * quarter of `connectTimeout`): one that takes longer is waiting on the
 * network (an unreachable host, a listener that never answers), not on our
 * CPU, and must not hold back the dials behind it.
 */
import { Fifo } from './fifo';

interface Waiter {
  start: (release: () => void) => void;
  cancelled: boolean;
}

export class HandshakeSlots {
  /** Handshakes started and not yet settled. */
  inProgress = 0;
  private readonly waiting = new Fifo<Waiter>();
  /** Waiters neither started nor cancelled. */
  private live = 0;

  constructor (private readonly max: number, private readonly lease: number) {}

  /** Dials waiting for a slot. */
  get queued (): number {
    return this.live;
  }

  /**
   * Calls `start(release)` now if a slot is free, else once one is. `release`
   * gives the slot back (once; later calls do nothing). The returned function
   * cancels a dial still waiting (true), or does nothing once it has started
   * (false).
   */
  take (start: (release: () => void) => void): () => boolean {
    const waiter: Waiter = { start, cancelled: false };
    if (this.inProgress < this.max && this.waiting.length === 0) {
      this.run(waiter);
      return () => false;
    }
    this.waiting.push(waiter);
    this.live++;
    let started = false;
    waiter.start = (release) => {
      started = true;
      this.live--;
      start(release);
    };
    return () => {
      if (started || waiter.cancelled) return false;
      waiter.cancelled = true;
      this.live--;
      return true;
    };
  }

  private run (waiter: Waiter): void {
    this.inProgress++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      this.inProgress--;
      this.next();
    };
    const timer = setTimeout(release, this.lease);
    timer.unref();
    waiter.start(release);
  }

  private next (): void {
    while (this.inProgress < this.max) {
      const waiter = this.waiting.shift();
      if (waiter === undefined) return;
      if (!waiter.cancelled) this.run(waiter);
    }
  }
}
