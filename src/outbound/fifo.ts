/**
 * A first-in first-out queue that gives back what it has handed out.
 *
 * An array read from a moving head keeps every item it has handed out until
 * it is emptied, and a queue that never quite empties (a remote that reads
 * more slowly than gossip is produced, for as long as that lasts) then grows
 * without bound although what it holds is bounded. Here a slot is cleared as
 * its item is taken, and the array is cut down once the taken slots are at
 * least half of it: at most twice the items held, plus COMPACT_FROM slots.
 */

/** Taken slots tolerated before the array is cut down. */
const COMPACT_FROM = 1024;

export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  /** Items held. */
  get length (): number {
    return this.items.length - this.head;
  }

  /** Slots the backing array has, taken ones included. */
  get capacity (): number {
    return this.items.length;
  }

  push (item: T): void {
    this.items.push(item);
  }

  /** The oldest item, without taking it; undefined when empty. */
  peek (): T | undefined {
    return this.items[this.head];
  }

  /** Takes the oldest item; undefined when empty. */
  shift (): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_FROM && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear (): void {
    this.items = [];
    this.head = 0;
  }
}
