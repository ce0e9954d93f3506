/**
 * TcpTransport: the 0.1.6 API over plain TCP, TLS or mutual TLS. The API
 * face: it validates options, routes each send, turns what the inbound side
 * delivers into events, and keeps the counters of stats(). The work is done
 * below it:
 *
 * Inbound (inbound/server.ts, inbound/connection.ts): socket -> admission ->
 * frame decoder -> message validation -> identity policy -> peer ledger ->
 * event. Outbound: payload -> size check -> gate (outbound/gate.ts) ->
 * handshake slot for TLS (outbound/handshakes.ts) -> connection (per
 * message: outbound/plain-once.ts, outbound/tls-once.ts; or pooled:
 * outbound/pool.ts) -> socket (tls/socket-factory.ts).
 *
 * Links (tls/link.ts): with TLS and keepAlive, one connection may carry both
 * directions between two peers. The transport joins the two sides: the
 * inbound server binds a link and hands it to the pool (`bindLink`), and the
 * pool hands its own dialled links to the inbound server to be read
 * (`readLink`).
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { channels } from './diagnostics';
import {
  asOptionError,
  type EmittedError,
  type CertificateWarning,
  FrameTooLargeError,
  InvalidMessageError,
  MalformedPeerError,
  PeerUnauthorizedError,
  TransportClosedError
} from './errors';
import { InboundServer, type EventInfo } from './inbound/server';
import { OutboundCounters } from './outbound/counters';
import { OutboundGate } from './outbound/gate';
import { HandshakeSlots } from './outbound/handshakes';
import { Outages } from './outbound/outages';
import { PlainOnce } from './outbound/plain-once';
import { ConnectionPool } from './outbound/pool';
import { OutboundRefusals, isRefusal } from './outbound/refusals';
import { TlsOnce } from './outbound/tls-once';
import { watchCertificates } from './tls/cert-files';
import { OwnCertificateHealth } from './tls/own-certificate';
import { IdentityPolicy } from './tls/identity';
import { certificateExpiry } from './tls/trust';
import type { Delta, DigestEntry, Message, Sender } from './wire/message';
import { checkSecureContextNames, resolveOptions, splitCrls, type CertificateFiles, type CertificateWatch, validateCertificateFiles, validateHost, validatePort, type ResolvedOptions, type TransportOptions } from './options';
import { SocketFactory } from './tls/socket-factory';

export type { EventInfo } from './inbound/server';

/** Typed events (`transport.on('deltas', (sender, deltas, info) => ...)`). */
export interface TransportEvents {
  deltas: [remotePeer: Sender, deltas: Delta[], info: EventInfo];
  digest: [remotePeer: Sender, digest: DigestEntry[], info: EventInfo];
  /** Any failure, this package's or Node's: `switch (error.code)` narrows to the class. */
  error: [error: EmittedError];
  listening: [];
  /** This node's own certificate is expired, not yet valid or expiring soon (without a listener: process.emitWarning). */
  warning: [warning: CertificateWarning];
}

/** What `stats()` returns; every counter starts at 0 with the transport. */
export interface TransportStats {
  connections: {
    /** Inbound connections accepted by the listener. */
    accepted: number;
    /** Inbound connections held now (TLS handshakes in progress included). */
    open: number;
    /** Inbound connections closed at once, before any byte was read (`refusals` says why). */
    refused: number;
    /** Inbound connections closed to make room under maxConnections. */
    evicted: number;
    /** Outbound connections opened (per message, or pooled). */
    outbound: number;
    /** Outbound TLS connections that resumed a cached session. */
    resumed: number;
    /** Outbound sockets open or opening now (per message and pooled, name resolutions included). */
    outboundOpen: number;
    /** Pooled sockets we ended that wait for their remote to close (bounded; destroyed after connectTimeout). */
    retiring: number;
  };
  /**
   * TLS handshakes in progress now, and those waiting for a slot: inbound
   * (`maxHandshakes`) and outbound (`outbound.maxHandshakes`).
   */
  handshakes: { inbound: number; inboundQueued: number; outbound: number; outboundQueued: number };
  /** Frames delivered as events (in) and handed to a socket (out). */
  frames: { in: number; out: number };
  /** Bytes read from inbound connections (in) and frame bytes written (out). */
  bytes: { in: number; out: number };
  /**
   * Certificate expiry, for alerting before it happens (ms since the epoch):
   * this transport's active certificate, and the soonest-expiring certificate
   * among the latest one seen from each peer identity (inbound and outbound).
   */
  certificates: {
    expires: number | undefined;
    peerSoonest: { expires: number; subject: string; fingerprint256: string } | undefined;
  };
  /**
   * Every failure, by code (network and peer failures, ours and Node's),
   * including those an aggregated report stands for (ERR_TRANSPORT_CLOSED
   * drops, repeated failures to reach a destination that is down).
   */
  errors: Record<string, number>;
  /** Inbound connections refused or evicted, by reason (`source-rate`, `source-connections`, `max-connections`, `evicted`, `closing`). */
  refusals: Record<string, number>;
  /**
   * Membership (README, "Proven membership"): ids passed on to listeners (at
   * most maxPeers); ids this node holds proof of; ids held back now while a
   * proof is under way; proof attempts that failed plus introductions turned
   * away; senders and digest entries held back; probes sent; and peer entries
   * dropped past the maxPeers budget.
   */
  peers: { known: number; proven: number; pending: number; refused: number; heldBack: number; probes: number; dropped: number };
  /** Plaintext seen by a TLS transport (migration): connections, distinct sender ids, last time (ms since epoch). */
  plaintext: { connections: number; peers: number; lastSeen: number | undefined };
  /**
   * Outbound: bytes of frames held before the kernel has them (what
   * `outbound.maxQueuedBytes` caps), and frames refused or given up, by cause
   * (`maxConnections`, `maxPerDestination`, `maxPooledRemotes`,
   * `maxQueuedBytes`, `evicted`: a connection or queued frame that gave way
   * to another destination at a cap, `not-allowed`, `backpressure`), each
   * counted though only one report per destination and code per 10 s is emitted.
   */
  outbound: { queuedBytes: number; refusals: Record<string, number> };
}

interface ListenOptions {
  /** Bind address; `''` means the transport's host, as in 0.1.6. */
  host?: string;
  /** Bind port; a decimal string is accepted, as in the constructor. */
  port?: number | string;
}

/**
 * A frame as bytes, terminator included, for a TLS per-message send: encoded
 * once, so the TLS socket encrypts bytes it need not convert.
 */
function encode (line: string, size: number): Buffer {
  const frame = Buffer.allocUnsafe(size + 2);
  frame.write(line, 0, size, 'utf8');
  frame[size] = 0x0d;
  frame[size + 1] = 0x0a;
  return frame;
}

/** Where a send was going, for its error (built on error paths only, not for every message). */
function remoteInfo (host: string, port: number, peerId: string | undefined): { remoteAddress: string; remotePort: number; peerId: string | undefined } {
  return { remoteAddress: host, remotePort: port, peerId };
}

/** Membership probes wait a random delay below this many ms (see #probe). */
const PROBE_JITTER = 100;

/**
 * Runs option and argument checks: a TypeError or RangeError they throw is a
 * programmer's mistake, and leaves with code ERR_INVALID_OPTION.
 */
function checked<T> (check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw asOptionError(error);
  }
}

function validPort (port: unknown): number | undefined {
  const n = typeof port === 'string' && /^[0-9]+$/.test(port) ? Number(port) : port;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

export class TcpTransport extends EventEmitter<TransportEvents> {
  /** Host peers are told to connect to (0.1.6: `transport.host`). */
  host: string;
  /** Port peers are told to connect to; after `listen()` on port 0, the port chosen. */
  port: number;
  /** The listening server, or null (0.1.6: `transport.server`). */
  server: Server | null = null;

  readonly #options: ResolvedOptions;
  readonly #factory: SocketFactory;
  readonly #identity: IdentityPolicy;
  readonly #pool: ConnectionPool | undefined;
  readonly #inbound: InboundServer;
  readonly #gate: OutboundGate;
  /** One plaintext connection per message (plain mode, and plaintext during a migration). */
  readonly #plainOnce: PlainOnce;
  /** One TLS connection per message (TLS with keepAlive off). */
  readonly #tlsOnce: TlsOnce;
  #closeWaiters: Array<() => void> = [];
  /** Fires at `tls.plaintext.until` to close the plaintext connections still open. */
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** When the active certificate expires (ms since the epoch), if it can be read. */
  #ownExpiry: number | undefined;
  /** Warns when this node's own certificate is expired, not yet valid, or expiring soon. */
  readonly #health = new OwnCertificateHealth(() => this.#factory.context?.cert, (warning) => this.#warn(warning));
  /** Certificate files followed (watchCertificates). */
  readonly #watches = new Set<CertificateWatch>();
  /** The id this node last sent as (localPeer.id): what a reloaded certificate must still name. */
  #localId: string | undefined;
  /** How this node last introduced itself (localPeer's id and transport): what a membership probe says. */
  #localPeer: { id: string; transport: unknown } | undefined;
  #closing = false;
  /** Set by close(), cleared by listen(): no frame is sent meanwhile. */
  #closed = false;
  #droppedAfterClose = 0;
  readonly #counters = new OutboundCounters();
  readonly #handshakes: HandshakeSlots;
  /** Unreachable destinations, reported once per outage (outbound/outages.ts). */
  readonly #outages = new Outages({
    report: (error) => this.#report(error),
    emit: (error) => this.#emit(error),
    count: (code) => this.#count(code)
  });
  /** Frames refused by an outbound cap or the allow-list: one report per destination and code per 10 s (outbound/refusals.ts). */
  readonly #refusals = new OutboundRefusals({
    report: (error) => this.#report(error),
    emit: (error) => this.#emit(error),
    count: (code) => this.#count(code)
  });
  /** Every error emitted, by code. */
  readonly #errors: Record<string, number> = {};

  /** Constructs and listens; returns the instance (0.1.6's `TcpTransport.listen`). */
  static listen (options?: TransportOptions, callback?: () => void): TcpTransport {
    const transport = new this(options);
    transport.listen(callback);
    return transport;
  }

  constructor (options?: TransportOptions) {
    super();
    this.#options = checked(() => resolveOptions(options));
    this.host = this.#options.host;
    this.port = this.#options.port;
    this.#identity = new IdentityPolicy(this.#options.tls);
    this.#factory = new SocketFactory(this.#options.tls, this.#options.cluster, this.#identity, this.#options.keepAlive !== undefined);
    this.#gate = new OutboundGate(this.#options.outbound, this.#options.connectTimeout);
    this.#inbound = new InboundServer({
      options: this.#options,
      factory: this.#factory,
      identity: this.#identity,
      report: (error) => this.#report(error),
      deliver: (message, info) => this.#deliver(message, info),
      pastPlaintextDeadline: () => this.#pastDeadline(),
      bindLink: (key, link) => this.#pool?.adoptLink(key, link),
      probe: (id, host, port) => this.#probe(id, host, port),
      ownAddress: () => ({ host: this.host, port: this.port })
    });
    const membership = this.#inbound.membership;
    // A server certificate the policy accepted for an id proves it there; one it refused does not get the id.
    this.#identity.onServerVerdict = (id, host, port, accepted) => {
      if (accepted) membership.proveByCertificate(id, { host, port });
      else membership.refuse(id, host, port, 'certificate');
    };
    this.#ownExpiry = certificateExpiry(this.#factory.context?.cert);
    this.#handshakes = new HandshakeSlots(this.#options.outbound.maxHandshakes, this.#options.connectTimeout / 4);
    // After the constructor returns, so that a 'warning' listener attached then hears it.
    if (this.#options.tls !== undefined) process.nextTick(() => this.#health.check(false));
    const outbound = {
      factory: this.#factory,
      gate: this.#gate,
      identity: this.#identity,
      connectTimeout: this.#options.connectTimeout,
      handshakes: this.#handshakes,
      counters: this.#counters,
      // Refusals an attacker can multiply, and outages, are each reported once per destination and interval.
      report: (error: Error) => {
        this.#sendFailed(error);
        if (isRefusal(error)) this.#refusals.report(error);
        else this.#outages.report(error);
      },
      reached: (host: string, port: number) => this.#outages.reached(host, port)
    };
    this.#plainOnce = new PlainOnce(outbound);
    this.#tlsOnce = new TlsOnce({ ...outbound, closing: () => this.#closing });
    const keepAlive = this.#options.keepAlive;
    if (keepAlive) {
      this.#pool = new ConnectionPool({
        ...outbound,
        idleTimeout: keepAlive.idleTimeout,
        maxQueuedBytes: keepAlive.maxQueuedBytes,
        maxRemotes: this.#options.outbound.maxPooledRemotes,
        closeTimeout: this.#options.connectTimeout,
        secure: () => this.#sendSecure(),
        readLink: (socket, certificate, remote, onFrame) => this.#inbound.readOutbound(socket, certificate, remote, onFrame)
      });
    }
  }

  /** Listens on the advertised host and port; `options` override them for the bind only. */
  listen (callback?: () => void): this;
  listen (options?: ListenOptions | null, callback?: () => void): this;
  listen (options?: ListenOptions | null | (() => void), callback?: () => void): this {
    return checked(() => this.#listen(options, callback));
  }

  #listen (options?: ListenOptions | null | (() => void), callback?: () => void): this {
    if (typeof options === 'function') {
      callback = options;
      options = undefined;
    }
    const bind = options ?? {};
    if (typeof bind !== 'object') throw new TypeError('listen options must be an object');
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('listen callback must be a function');
    const host = validateHost('listen options.host', bind.host, this.host);
    const port = validatePort('listen options.port', bind.port, this.port);
    if (this.server) throw Object.assign(new Error('transport is already listening; close() it first'), { code: 'ERR_ALREADY_LISTENING' });
    this.#closed = false;
    this.#droppedAfterClose = 0;
    const context = this.#factory.context;
    if (context && context.cert === undefined && context.pfx === undefined) {
      // A send-only TLS transport may have no certificate; a server must.
      throw new TypeError('listen() in TLS mode needs options.tls.key and options.tls.cert (or pfx)');
    }

    // Links need both sides: frames read on our dials are checked by the inbound server's sweep.
    this.#factory.setLinking(true);
    const server = this.#inbound.listen(host, port, (error) => this.emit('error', error), (address) => {
      // Port 0 advertised: peers must be told the port the system chose.
      if (this.port === 0 && bind.port === undefined) this.port = address.port;
      this.emit('listening');
    });
    this.server = server;
    this.#armPlaintextDeadline();
    if (context) this.#health.check(true);
    if (callback) server.once('listening', callback);
    return this;
  }

  /** The bound address, as `net.Server#address()`; null when not listening. */
  address (): AddressInfo | null {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address : null;
  }

  /**
   * Stops listening and closes every connection the transport holds: inbound
   * ones at once, pooled ones after flushing their queues (briefly), per-message
   * ones when they finish. The callback runs once, after everything is closed;
   * without a callback, a promise that resolves then (it never rejects).
   * From now until the next listen(), nothing is sent: a send is dropped,
   * counted, and the first one reported as ERR_TRANSPORT_CLOSED.
   */
  close (): Promise<void>;
  close (callback: () => void): void;
  close (callback?: () => void): Promise<void> | void {
    if (callback === undefined) return new Promise<void>((resolve) => this.close(resolve));
    if (typeof callback !== 'function') throw asOptionError(new TypeError('close callback must be a function'));
    this.#closed = true;
    this.#closeWaiters.push(callback);
    if (this.#closing) return;
    this.#closing = true;
    this.#factory.setLinking(false);
    let pending = 1;
    const done = (): void => {
      if (--pending > 0) return;
      // Failures held for an outage or refusal report go out now, so every frame is accounted for.
      this.#outages.drain();
      this.#refusals.drain();
      this.#closing = false;
      const waiters = this.#closeWaiters;
      this.#closeWaiters = [];
      for (const waiter of waiters) waiter();
    };
    this.#health.stop();
    if (this.server) {
      pending++;
      this.server = null;
      if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
      this.#inbound.close(done);
    }
    if (this.#pool) {
      pending++;
      this.#pool.close(done);
    }
    for (const watch of this.#watches) watch.close();
    this.#watches.clear();
    this.#tlsOnce.close();
    for (const socket of [...this.#tlsOnce.open, ...this.#plainOnce.open]) {
      pending++;
      socket.once('close', done);
    }
    process.nextTick(done);
  }

  /** Sends `{ deltas, sender: { id, transport } }` to `remotePeer`. */
  deltas (remotePeer: unknown, localPeer: { id: string; transport?: unknown }, deltas: unknown): void {
    this.#noteLocal(localPeer);
    this.rpc(remotePeer, { deltas, sender: { id: localPeer.id, transport: localPeer.transport } });
  }

  /** Sends `{ digest, sender: { id, transport } }` to `remotePeer`. */
  digest (remotePeer: unknown, localPeer: { id: string; transport?: unknown }, digest: unknown): void {
    this.#noteLocal(localPeer);
    this.rpc(remotePeer, { digest, sender: { id: localPeer.id, transport: localPeer.transport } });
  }

  /**
   * Sends one frame to `remotePeer.transport.host:port`. A string payload is
   * sent as it is; anything else is JSON-encoded. Failures are emitted as 'error'.
   */
  rpc (remotePeer: unknown, payload: unknown): void {
    const peer = remotePeer as { id?: unknown; transport?: { host?: unknown; port?: unknown } } | null | undefined;
    const target = peer?.transport;
    const host = target?.host;
    const port = validPort(target?.port);
    const peerId = typeof peer?.id === 'string' ? peer.id : undefined;
    if (typeof host !== 'string' || host.length === 0 || port === undefined) {
      this.#report(new MalformedPeerError({ peerId }));
      return;
    }
    if (this.#closed) {
      // gossipmonger has no stop: its timer keeps calling digest() after close().
      // Report once, count every drop.
      if (this.#droppedAfterClose++ === 0) this.#report(new TransportClosedError(1, remoteInfo(host, port, peerId)));
      else this.#count('ERR_TRANSPORT_CLOSED');
      return;
    }
    if (this.#identity.refusesAnonymousSend(peerId) && this.#sendSecure()) {
      // Under 'sender-id' the server must prove the id we send to; with no id
      // there is nothing it could prove, so nothing is sent.
      this.#report(new PeerUnauthorizedError(String(peer!.id ?? ''), { outbound: true, framesDropped: 1, ...remoteInfo(host, port, peerId) }));
      return;
    }
    let line: string | undefined;
    if (typeof payload === 'string') {
      // A string is sent as it is, so it must be one line; JSON.stringify never emits a raw newline.
      line = payload.includes('\n') ? undefined : payload;
    } else {
      try {
        line = JSON.stringify(payload);
      } catch (error) {
        // Circular, BigInt, or nested deeper than the stack: refuse, never throw.
        // Not JSON.stringify's error as the cause: it names the payload's
        // properties, and a payload's content stays out of errors.
        this.#report(new InvalidMessageError(`payload cannot be encoded as JSON (${(error as Error).name})`, remoteInfo(host, port, peerId)));
        return;
      }
    }
    if (line === undefined) {
      this.#report(new InvalidMessageError('payload must encode to one line of JSON', remoteInfo(host, port, peerId)));
      return;
    }
    const size = Buffer.byteLength(line);
    if (size > this.#options.maxFrameSize) {
      this.#report(new FrameTooLargeError(this.#options.maxFrameSize, `outbound frame of ${size} bytes exceeds maxFrameSize of ${this.#options.maxFrameSize}; not sent`, remoteInfo(host, port, peerId)));
      return;
    }
    const secure = this.#sendSecure();
    // Pool or one connection per message. Plaintext during a migration goes one
    // connection per message even with keepAlive: the receiver may still be
    // 0.1.6, which reads one frame per connection.
    if (this.#pool && (secure || !this.#factory.secure)) this.#pool.send(peerId, host, port, line + '\r\n', size + 2);
    else if (secure) this.#tlsOnce.send(peerId, host, port, encode(line, size));
    else this.#plainOnce.send(peerId, host, port, line, size);
  }

  /**
   * Rotates key, certificate and CA: every new connection, inbound and
   * outbound, uses the new material. Cached TLS sessions and the server's
   * ticket keys are replaced, so no session outlives the rotation, and pooled
   * outbound connections are ended after what they were already handed.
   */
  setSecureContext (tlsOptions: SecureContextOptions): void {
    checked(() => {
      if (!this.#factory.secure) throw new TypeError('setSecureContext() needs a transport constructed with options.tls');
      if (typeof tlsOptions !== 'object' || tlsOptions === null) throw new TypeError('setSecureContext(tlsOptions): tlsOptions must be an object');
      checkSecureContextNames('setSecureContext(tlsOptions): tlsOptions', tlsOptions as Record<string, unknown>);
      if (this.#options.tls!.requestCert && 'ca' in tlsOptions && tlsOptions.ca === undefined && (tlsOptions.pfx ?? this.#factory.context?.pfx) === undefined) {
        throw new TypeError('setSecureContext(tlsOptions): tlsOptions.ca cannot be removed from a transport with options.tls.requestCert (any certificate from a public CA would be accepted)');
      }
    });
    this.#factory.rotate(tlsOptions.crl === undefined ? tlsOptions : { ...tlsOptions, crl: splitCrls(tlsOptions.crl) as SecureContextOptions['crl'] });
    this.#ownExpiry = certificateExpiry(this.#factory.context?.cert);
    this.#health.check(this.server !== null);
    if (channels.tlsRotated.hasSubscribers) channels.tlsRotated.publish({ generation: this.#factory.generation, expires: this.#ownExpiry });
    this.#pool?.rotated();
    this.#tlsOnce.rotated();
    this.#inbound.recheck();
  }

  /**
   * Follows key, certificate, CA and optional CRL files: each change is
   * debounced, read (again if a file is half-written), validated, and swapped
   * in with setSecureContext(); a set that fails validation is refused with
   * ERR_CERT_RELOAD and the current material stays. close() stops it too.
   */
  watchCertificates (files: CertificateFiles): CertificateWatch {
    checked(() => {
      if (this.#options.tls === undefined) throw new TypeError('watchCertificates() needs a transport constructed with options.tls');
      validateCertificateFiles(files);
    });
    const watch = watchCertificates(files, {
      apply: (material) => this.setSecureContext(material),
      report: (error) => this.#report(error),
      // Under 'sender-id' peers will check the certificate against this node's id.
      expectedId: () => this.#identity.ownId(this.#localId, this.#factory.context?.cert)
    });
    const handle: CertificateWatch = {
      reload: () => watch.reload(),
      get applied () { return watch.applied; },
      close: () => {
        this.#watches.delete(handle);
        watch.close();
      }
    };
    this.#watches.add(handle);
    return handle;
  }

  /** A snapshot of the counters; see TransportStats. */
  stats (): TransportStats {
    const s = this.#counters;
    const l = this.#inbound.stats;
    const m = this.#inbound.membership;
    return {
      connections: { accepted: l.accepted, open: this.#inbound.size, refused: l.refused, evicted: l.evicted, outbound: s.opened, resumed: s.resumed, outboundOpen: this.#gate.inFlight, retiring: this.#pool?.retiringCount ?? 0 },
      handshakes: { inbound: this.#inbound.handshakes.inProgress, inboundQueued: this.#inbound.handshakes.waiting, outbound: this.#handshakes.inProgress, outboundQueued: this.#handshakes.queued },
      frames: { in: l.framesIn, out: s.framesOut },
      bytes: { in: l.bytesIn, out: s.bytesOut },
      certificates: { expires: this.#ownExpiry, peerSoonest: this.#identity.soonestPeer() },
      errors: { ...this.#errors },
      refusals: { ...l.refusals },
      peers: {
        known: this.#inbound.peerCount,
        proven: m.proven,
        pending: m.pending,
        refused: m.refused,
        heldBack: m.heldBack,
        probes: m.probes,
        dropped: l.peersDropped
      },
      plaintext: { connections: l.plaintextConnections, peers: this.#inbound.plaintextPeerCount, lastSeen: l.plaintextLastSeen },
      outbound: { queuedBytes: this.#gate.memory.used, refusals: { ...this.#refusals.byReason } }
    };
  }

  // ---------------------------------------------------------------- sending

  /** gossipmonger tells the transport who it is with every send: membership needs it (its own id, and what a probe says). */
  #noteLocal (localPeer: { id: string; transport?: unknown }): void {
    this.#localId = localPeer.id;
    const known = this.#localPeer;
    if (known !== undefined && known.id === localPeer.id && known.transport === localPeer.transport) return;
    this.#localPeer = { id: localPeer.id, transport: localPeer.transport };
    if (typeof localPeer.id === 'string' && localPeer.id.length > 0) this.#inbound.membership.setSelf(localPeer.id);
  }

  /**
   * A membership proof attempt: a digest to `id` at host:port, sent as this
   * node, which tells `id` about this node (proving this node there the same
   * way). Under a policy that binds ids, the connection must first present
   * `id`'s certificate, which proves `id`; the digest is empty, so `id` need
   * not answer (an answer would cost it a connection of its own), and with
   * keepAlive the connection is the pooled one later gossip to `id` uses.
   * Otherwise only a frame from `id` proves it: the digest names `id` at
   * version 0, which a gossipmonger peer answers with its own deltas.
   *
   * Sent after a random delay of up to PROBE_JITTER ms (never from inside the
   * delivery of the frame that introduced `id`), and only if the attempt is
   * still under way then: two nodes that learn of each other at once would
   * otherwise both probe, where the first probe proves both ends; and a new
   * node's id reaches every member within a few rounds, whose probes then
   * spread out instead of arriving together. False until gossipmonger has
   * said who this node is.
   */
  #probe (id: string, host: string, port: number): boolean {
    const local = this.#localPeer;
    if (local === undefined || this.#closed) return false;
    const timer = setTimeout(() => {
      const membership = this.#inbound.membership;
      if (this.#closed || !membership.isPending(id, host, port)) return;
      membership.noteProbeSent();
      const byCertificate = this.#identity.provesIds && this.#sendSecure();
      this.rpc({ id, transport: { host, port } }, { digest: byCertificate ? [] : [{ id, maxVersionSeen: 0 }], sender: { id: local.id, transport: local.transport } });
    }, Math.floor(Math.random() * PROBE_JITTER));
    timer.unref();
    return true;
  }

  /** TLS for a new outbound connection, unless a migration still sends plaintext. */
  #sendSecure (): boolean {
    const tls = this.#options.tls;
    if (!tls) return false;
    return !tls.plaintext.send || this.#pastDeadline();
  }

  #pastDeadline (): boolean {
    const until = this.#options.tls?.plaintext.until;
    return until !== undefined && Date.now() >= until;
  }

  /** Arms the timer that closes plaintext connections at `tls.plaintext.until`. */
  #armPlaintextDeadline (): void {
    const until = this.#options.tls?.plaintext.until;
    if (until === undefined || !this.#options.tls!.plaintext.accept || this.#deadlineTimer !== undefined) return;
    const wait = until - Date.now();
    if (wait <= 0) return;
    // setTimeout holds at most 2^31-1 ms (about 24.8 days); longer waits re-arm.
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = undefined;
      if (this.#pastDeadline()) this.#inbound.cutPlaintext();
      else this.#armPlaintextDeadline();
    }, Math.min(wait, 0x7fffffff));
    this.#deadlineTimer.unref();
  }

  /** A warning: to the transport's 'warning' listeners, or else to process.emitWarning (printed by Node). */
  #warn (warning: CertificateWarning): void {
    if (this.listenerCount('warning') > 0) this.emit('warning', warning);
    else process.emitWarning(warning);
  }

  /**
   * Every failure of the send path, before outages hold repeats back: if it
   * was a membership probe's, that proof attempt has failed.
   */
  #sendFailed (error: Error): void {
    const failed = error as { peerId?: unknown; remoteAddress?: unknown; remotePort?: unknown };
    if (typeof failed.peerId !== 'string' || typeof failed.remoteAddress !== 'string' || typeof failed.remotePort !== 'number') return;
    // Pooled by address (no per-id policy): one connection, and one error, for every id there.
    this.#inbound.membership.sendFailed(failed.peerId, failed.remoteAddress, failed.remotePort, this.#pool !== undefined && !this.#identity.perPeer);
  }

  /** Counts and emits one error. Network and peer failures all come through here. */
  #report (error: Error): void {
    const code = (error as { code?: unknown }).code;
    this.#count(typeof code === 'string' ? code : 'UNKNOWN');
    this.#emit(error);
  }

  /** Emits an error already counted (an outage report stands for failures counted as they happened). */
  #emit (error: Error): void {
    if (channels.error.hasSubscribers) channels.error.publish({ error });
    this.emit('error', error);
  }

  #count (code: string): void {
    this.#errors[code] = (this.#errors[code] ?? 0) + 1;
  }

  /** A valid, authorized message from the listener. */
  #deliver (message: Message, info: EventInfo): void {
    if (message.deltas !== undefined) this.emit('deltas', message.sender, message.deltas, info);
    else this.emit('digest', message.sender, message.digest, info);
  }
}
