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
 *    cannot answer differently between the check and the connect;
 * 3. a slot is taken under `outbound.maxPerDestination` for that address and port.
 *
 * A refusal opens no socket; the caller reports the coded error. Slots are
 * given back when the socket closes (`Lease.release`).
 */
import { lookup as dnsLookup } from 'node:dns';
import { DestinationRefusedError, OutboundLimitError, type RemoteInfo } from '../errors';
import type { ResolvedOptions } from '../options';
import { destinationOf, isAddress } from '../net/addresses';


export class Lease {
  private released = false;
  destination: string | undefined;

  constructor (private readonly gate: OutboundGate) {}

  /** Gives the slots back; safe to call more than once. */
  release (): void {
    if (this.released) return;
    this.released = true;
    this.gate.inFlight--;
    if (this.destination !== undefined) this.gate.releaseDestination(this.destination);
  }
}

export type OpenCallback = (error: Error | undefined, lease: Lease | undefined, address: string | undefined) => void;

export class OutboundGate {
  /** Outbound sockets open or opening (resolutions in progress included). */
  inFlight = 0;
  private readonly perDestination = new Map<string, number>();

  constructor (private readonly options: ResolvedOptions['outbound']) {}

  /** Sockets open or opening to `address:port`. */
  toDestination (key: string): number {
    return this.perDestination.get(key) ?? 0;
  }

  releaseDestination (key: string): void {
    const n = (this.perDestination.get(key) ?? 1) - 1;
    if (n <= 0) this.perDestination.delete(key);
    else this.perDestination.set(key, n);
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

  /** Takes a slot under maxConnections (a socket open or opening, resolution included); the refusal when none is left. */
  private reserve (host: string, port: number): Lease | Error {
    if (this.inFlight >= this.options.maxConnections) {
      return new OutboundLimitError('maxConnections', this.options.maxConnections, { remoteAddress: host, remotePort: port });
    }
    this.inFlight++;
    return new Lease(this);
  }

  /** Takes the per-destination slot for `address` (or `host`); the refusal, if it is full. */
  private admit (lease: Lease, host: string, port: number, address: string | undefined): Error | undefined {
    const key = `${destinationOf(address ?? host)}:${port}`;
    const open = this.toDestination(key);
    if (open >= this.options.maxPerDestination) {
      lease.release();
      return new OutboundLimitError('maxPerDestination', this.options.maxPerDestination, { remoteAddress: host, remotePort: port });
    }
    this.perDestination.set(key, open + 1);
    lease.destination = key;
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
    const done = (error: NodeJS.ErrnoException | null, addresses: Array<{ address: string }> | undefined): void => {
      if (answered) return;
      answered = true;
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
