/**
 * Outbound policy and bounds, shared by per-message sends and the pool.
 *
 * gossipmonger answers a digest by sending to the `sender.transport` the
 * digest names, so every inbound frame can make this node dial any host and
 * port a remote picks. Before a socket is opened:
 *
 * 1. a slot is taken under `outbound.maxConnections` (sockets open or opening);
 * 2. with `outbound.allow` (or a custom `lookup`), a host name is resolved and
 *    the address checked; the socket is later opened to that address, so DNS
 *    cannot answer differently between the check and the connect. A lookup
 *    that does not answer within `connectTimeout` is given up on, and its
 *    slot given back;
 * 3. a slot is taken under `outbound.maxPerDestination` for that address and port.
 *
 * A refusal opens no socket; the caller reports the coded error. Slots are
 * given back when the socket closes (`Lease.release`).
 *
 * Fair share: when every slot is taken, a destination holding fewer slots
 * takes one back from a destination that never completed an exchange (a
 * tarpit: it accepts and never answers) or, failing that, from the
 * destination holding the most. A destination is *proven* while its last
 * exchange completed (a per-message frame taken and the connection closed
 * by the remote; a TLS handshake accepted; a pooled connection accepted):
 * a proven destination takes slots from unproven ones whatever they hold;
 * otherwise a slot is only taken from a destination that would still hold
 * at least as many as the one taking it. The socket whose slot is taken back
 * is destroyed and its frame reported (`ERR_OUTBOUND_LIMIT`, `evicted`).
 *
 * Memory: every frame waiting to be written (per-message frames until the
 * kernel has them, pooled queues) is charged to one budget,
 * `outbound.maxQueuedBytes` (`MemoryBudget`); the pool can give way in it.
 */
import { lookup as dnsLookup } from 'node:dns';
import { DestinationRefusedError, OutboundLimitError, type RemoteInfo } from '../errors';
import { DEFAULTS, type ResolvedOptions } from '../options';
import { destinationOf, isAddress } from '../net/addresses';

/** Destinations whose last exchange completed, remembered at most (the least recently proven forgotten first). */
const PROVEN_REMEMBERED = 4096;

/** The slots held for one destination (an address and port), oldest first. */
interface Destination {
  readonly key: string;
  readonly leases: Set<Lease>;
}

export class Lease {
  #released = false;
  #completed = false;
  /** The destination whose slot this lease holds, once it has one. */
  destination: Destination | undefined;
  /**
   * Set by the owner while it holds a socket for this lease: the gate
   * destroys it, with the error, when it takes the slot back for another
   * destination (the owner reports the error from the socket's 'error').
   */
  holder: { destroy (error?: Error): unknown } | undefined;

  constructor (private readonly gate: OutboundGate) {}

  get released (): boolean {
    return this.#released;
  }

  /** The exchange on this lease completed (or its connection was accepted): its destination is proven. */
  completed (): void {
    this.#completed = true;
    if (this.destination !== undefined) this.gate.prove(this.destination.key);
  }

  /** Gives the slots back; safe to call more than once. */
  release (): void {
    if (!this.#free()) return;
    // A destination that held a slot and never finished an exchange on it is no longer proven.
    if (!this.#completed && this.destination !== undefined) this.gate.unprove(this.destination.key);
  }

  /** Taken back by the gate for another destination: the owner's socket is destroyed with `error`. */
  evict (error: Error): void {
    if (!this.#free()) return;
    const holder = this.holder;
    this.holder = undefined;
    holder?.destroy(error);
  }

  #free (): boolean {
    if (this.#released) return false;
    this.#released = true;
    this.gate.inFlight--;
    if (this.destination !== undefined) this.gate.releaseDestination(this.destination, this);
    return true;
  }
}

/**
 * What a frame counts against the memory budgets: the memory it holds, or its
 * UTF-8 size if that is more. V8 keeps a string of ASCII (or Latin-1) at one
 * byte per character, and any other string at two, so a frame whose UTF-8
 * size differs from its length may hold up to twice its length.
 */
export function frameCharge (frame: string, size: number): number {
  return size === frame.length ? size : Math.max(size, 2 * frame.length);
}

export type OpenCallback = (error: Error | undefined, lease: Lease | undefined, address: string | undefined) => void;

/**
 * Bytes of outbound frames this process holds before the kernel has them,
 * over every destination: `outbound.maxQueuedBytes`. A frame that does not
 * fit is refused, after the pool (`reclaim`) has had the chance to give way.
 */
export class MemoryBudget {
  used = 0;
  /**
   * Set by the pool: frees at least `bytes` from queues that must give way to
   * a frame for a destination that would then hold `held` bytes: those of
   * remotes whose connection never opened first (whatever they hold when the
   * destination is `proven`), then of the remote holding the most, while it
   * holds more than `held`. Returns nothing; `used` tells.
   */
  reclaim: ((bytes: number, held: number, proven: boolean) => void) | undefined;

  constructor (readonly max: number) {}

  /**
   * Charges `bytes` for a frame to a destination already holding `held`
   * (`proven`: its connection was accepted); false when it does not fit.
   */
  take (bytes: number, held = 0, proven = false): boolean {
    if (this.used + bytes > this.max) {
      this.reclaim?.(this.used + bytes - this.max, held + bytes, proven);
      if (this.used + bytes > this.max) return false;
    }
    this.used += bytes;
    return true;
  }

  give (bytes: number): void {
    this.used -= bytes;
  }
}

export class OutboundGate {
  /** Outbound sockets open or opening (resolutions in progress included). */
  inFlight = 0;
  readonly memory: MemoryBudget;
  private readonly destinations = new Map<string, Destination>();
  /** Destinations whose last exchange completed (insertion order: least recently proven first). */
  private readonly proven = new Map<string, true>();

  /** `lookupTimeout`: how long a name resolution may take (connectTimeout). */
  constructor (private readonly options: ResolvedOptions['outbound'], private readonly lookupTimeout: number = DEFAULTS.connectTimeout) {
    this.memory = new MemoryBudget(options.maxQueuedBytes);
  }

  /** Sockets open or opening to `address:port`. */
  toDestination (key: string): number {
    return this.destinations.get(key)?.leases.size ?? 0;
  }

  /** True while `key`'s last exchange completed. */
  isProven (key: string): boolean {
    return this.proven.has(key);
  }

  prove (key: string): void {
    this.proven.delete(key);
    this.proven.set(key, true);
    if (this.proven.size > PROVEN_REMEMBERED) this.proven.delete(this.proven.keys().next().value!);
  }

  unprove (key: string): void {
    this.proven.delete(key);
  }

  releaseDestination (destination: Destination, lease: Lease): void {
    destination.leases.delete(lease);
    if (destination.leases.size === 0 && this.destinations.get(destination.key) === destination) this.destinations.delete(destination.key);
  }

  /**
   * Takes the slots for one connection to `host:port` and checks the
   * destination, when that needs no name resolution (an IP literal, or no
   * policy on names): a lease, or the refusal. Undefined when a name must be
   * resolved first: open() does that. (The per-message hot path: no closure,
   * no callback.)
   */
  openNow (host: string, port: number): Lease | Error | undefined {
    const options = this.options;
    const literal = isAddress(host);
    if (!literal && (options.allow !== undefined || options.lookup !== undefined)) return undefined;
    const lease = this.reserve(host, port);
    if (!(lease instanceof Lease)) return lease;
    if (literal && options.allow !== undefined && !options.allow.allows(host)) {
      lease.release();
      return new DestinationRefusedError(host, host, { remoteAddress: host, remotePort: port });
    }
    return this.admit(lease, host, port, undefined) ?? lease;
  }

  /**
   * Takes a slot under maxConnections (a socket open or opening, resolution
   * included), taking one back from another destination when none is left
   * (see the module comment); the refusal when that is not fair either.
   */
  private reserve (host: string, port: number): Lease | Error {
    if (this.inFlight >= this.options.maxConnections && !this.makeRoom(`${destinationOf(host)}:${port}`)) {
      return new OutboundLimitError('maxConnections', this.options.maxConnections, { remoteAddress: host, remotePort: port });
    }
    this.inFlight++;
    return new Lease(this);
  }

  /**
   * Frees one slot for a connection to `key`, from the destination that
   * should give way: one that never completed an exchange before one that
   * did, then the one holding the most; only a slot whose owner holds a
   * socket (a resolution in progress is bounded by its own deadline).
   */
  private makeRoom (key: string): boolean {
    const held = this.toDestination(key);
    const provenRequester = this.proven.has(key);
    let victim: Destination | undefined;
    let victimProven = true;
    for (const destination of this.destinations.values()) {
      if (destination.key === key) continue;
      const count = destination.leases.size;
      const proven = this.proven.has(destination.key);
      // A proven destination takes from an unproven one whatever it holds; otherwise
      // only from one that would still hold at least as many as it after the swap.
      if (!(provenRequester && !proven) && count <= held + 1) continue;
      if (victim !== undefined && (proven && !victimProven || (proven === victimProven && count <= victim.leases.size))) continue;
      if (!hasEvictable(destination)) continue;
      victim = destination;
      victimProven = proven;
    }
    if (victim === undefined) return false;
    for (const lease of victim.leases) {
      if (lease.holder === undefined) continue;
      const [address, port] = splitKey(victim.key);
      lease.evict(new OutboundLimitError('maxConnections', this.options.maxConnections, { remoteAddress: address, remotePort: port }, victimProven ? 'held the most' : 'never completed an exchange'));
      return true;
    }
    return false;
  }

  /** Takes the per-destination slot for `address` (or `host`); the refusal, if it is full. */
  private admit (lease: Lease, host: string, port: number, address: string | undefined): Error | undefined {
    const key = `${destinationOf(address ?? host)}:${port}`;
    let destination = this.destinations.get(key);
    const open = destination?.leases.size ?? 0;
    if (open >= this.options.maxPerDestination) {
      lease.release();
      return new OutboundLimitError('maxPerDestination', this.options.maxPerDestination, { remoteAddress: host, remotePort: port });
    }
    if (destination === undefined) this.destinations.set(key, destination = { key, leases: new Set() });
    destination.leases.add(lease);
    lease.destination = destination;
    return undefined;
  }

  /**
   * As openNow(), resolving the name first when it must be checked; calls
   * back synchronously when no name has to be resolved.
   */
  open (host: string, port: number, callback: OpenCallback): void {
    const now = this.openNow(host, port);
    if (now !== undefined) {
      if (now instanceof Lease) callback(undefined, now, undefined);
      else callback(now, undefined, undefined);
      return;
    }
    const lease = this.reserve(host, port);
    if (!(lease instanceof Lease)) {
      callback(lease, undefined, undefined);
      return;
    }
    const options = this.options;
    const allow = options.allow;
    const remote: RemoteInfo = { remoteAddress: host, remotePort: port };
    const lookup = options.lookup ?? dnsLookup;
    let answered = false;
    // A resolver that never answers must not hold the slot: give up at the deadline.
    const deadline = setTimeout(() => {
      done(Object.assign(new Error(`no answer within ${this.lookupTimeout} ms`), { code: 'ETIMEOUT' }), undefined);
    }, this.lookupTimeout);
    deadline.unref();
    const done = (error: NodeJS.ErrnoException | null, addresses: Array<{ address: string }> | undefined): void => {
      if (answered) return;
      answered = true;
      clearTimeout(deadline);
      const list = error || !Array.isArray(addresses) ? [] : addresses;
      const chosen = list.find((entry) => typeof entry?.address === 'string' && isAddress(entry.address) && (allow === undefined || allow.allows(entry.address)));
      if (chosen === undefined) {
        lease.release();
        const first = list[0]?.address;
        callback(new DestinationRefusedError(host, first, {
          ...remote,
          cause: error ?? undefined,
          ...(error || first === undefined ? { reason: `outbound destination ${host} did not resolve${error ? ` (${error.code ?? error.message})` : ''}; not sent` } : {})
        }), undefined, undefined);
        return;
      }
      const refused = this.admit(lease, host, port, chosen.address);
      if (refused !== undefined) callback(refused, undefined, undefined);
      else callback(undefined, lease, chosen.address);
    };
    try {
      lookup(host, { all: true }, done);
    } catch (error) {
      done(error as NodeJS.ErrnoException, undefined);
    }
  }
}

function hasEvictable (destination: Destination): boolean {
  for (const lease of destination.leases) if (lease.holder !== undefined) return true;
  return false;
}

/** `address:port` (an IPv6 address has colons of its own) back into its parts. */
function splitKey (key: string): [string, number] {
  const colon = key.lastIndexOf(':');
  return [key.slice(0, colon), Number(key.slice(colon + 1))];
}
