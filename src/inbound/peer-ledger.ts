/**
 * How much peer state the network may make gossipmonger keep.
 *
 * gossipmonger@0.1.10 makes a peer of every sender and of every digest entry
 * naming an id it does not know, and never forgets one: each stays in its
 * storage and in every digest it sends from then on. A remote could
 * otherwise add peers without limit (hundreds of thousands, a stall on every
 * gossip round), or a few with large `transport` objects until the node's own
 * digest no longer fits in maxFrameSize and it stops gossiping for good.
 *
 * The ledger remembers the ids it has let through, and lets a new one
 * through only while both budgets hold: the number of ids (maxPeers) and the
 * bytes the new peers add to a digest (half of maxFrameSize, so the node's
 * own digest stays sendable). Pure: no sockets, unit-tested on messages.
 */
import type { DigestEntry, Message, Sender } from '../wire/message';

/** The largest maxVersionSeen a digest entry can carry, for sizing entries. */
const VERSION_PLACEHOLDER = Number.MAX_SAFE_INTEGER;

export interface LedgerVerdict {
  /** What to deliver (the digest without dropped entries), or undefined: drop the message. */
  message: Message | undefined;
  /** Peer entries (the sender, digest entries) dropped. */
  dropped: number;
}

export class PeerLedger {
  private readonly known = new Set<string>();
  private bytes = 0;
  /** Peer entries dropped so far. */
  dropped = 0;

  /**
   * `maxPeers`: ids let through at most (Infinity: no budget, but ids are
   * still remembered, as gossipmonger remembers them: membership asks `has`);
   * `maxBytes`: what their digest entries may add to a digest, serialised
   * (Infinity for no limit).
   */
  constructor (readonly maxPeers: number, readonly maxBytes: number) {}

  /** Distinct peer ids let through so far. */
  get size (): number {
    return this.known.size;
  }

  /** Whether `id` was let through (gossipmonger knows it). */
  has (id: string): boolean {
    return this.known.has(id);
  }

  /**
   * Lets a message through the budgets. A message from a new sender that does
   * not fit is dropped whole (gossipmonger would make a peer of the sender
   * first); digest entries naming new peers that do not fit are removed.
   */
  admit (message: Message): LedgerVerdict {
    const sender = message.sender;
    if (!this.learn(sender.id, sender)) {
      this.dropped++;
      return { message: undefined, dropped: 1 };
    }
    if (message.digest === undefined) return { message, dropped: 0 };
    let kept: DigestEntry[] | undefined;
    const digest = message.digest;
    for (let i = 0; i < digest.length; i++) {
      const entry = digest[i]!;
      if (this.learn(entry.id, entry)) {
        kept?.push(entry);
      } else if (kept === undefined) {
        // First refusal: copy what came before; common messages never get here.
        kept = digest.slice(0, i);
      }
    }
    if (kept === undefined) return { message, dropped: 0 };
    const dropped = digest.length - kept.length;
    this.dropped += dropped;
    return { message: { sender, digest: kept }, dropped };
  }

  /** True when `id` is known or fits; remembers it. */
  private learn (id: string, peer: Sender | DigestEntry): boolean {
    if (this.known.has(id)) return true;
    if (this.known.size >= this.maxPeers) return false;
    let size = 0;
    // maxPeers Infinity turns both budgets off.
    if (this.maxBytes !== Infinity && this.maxPeers !== Infinity) {
      // The entry as the node's own digest will carry it (only ever computed for new ids).
      size = Buffer.byteLength(JSON.stringify({ id, maxVersionSeen: VERSION_PLACEHOLDER, transport: peer.transport })) + 1;
      if (this.bytes + size > this.maxBytes) return false;
    }
    this.known.add(id);
    this.bytes += size;
    return true;
  }
}
