/**
 * TcpTransport: the 0.1.6 API over plain TCP, TLS or mutual TLS, wiring the
 * two sides together.
 *
 * Inbound (listener.ts): socket -> admission -> frame decoder -> message
 * validation -> authorization -> event. Outbound: payload -> size check ->
 * connection (per message, or pooled in connection-pool.ts) -> socket.
 */
import { EventEmitter } from 'node:events';
import type { X509Certificate } from 'node:crypto';
import type { AddressInfo, Server } from 'node:net';
import type { PeerCertificate, SecureContextOptions, TLSSocket } from 'node:tls';
import { isAuthorized } from './tls/identity';
import { ConnectionPool } from './outbound/pool';
import { dial, type Dialing } from './outbound/dial';
import {
  type CertificateWarning,
  ConnectTimeoutError,
  FrameTooLargeError,
  InvalidMessageError,
  MalformedPeerError,
  PeerUnauthorizedError,
  PeerUntrustedError,
  TransportClosedError,
  withFrames,
  withRemote
} from './errors';
import { Lease, OutboundGate } from './outbound/gate';
import { watchCertificates } from './tls/cert-files';
import { OwnCertificateHealth } from './tls/own-certificate';
import { certificateExpiry, parsePeerLike, subjectOf, verifyChain } from './tls/trust';
import { Listener, type EventInfo } from './inbound/server';
import { SendOnce } from './outbound/plain-once';
import type { Delta, DigestEntry, Message, Sender } from './wire/message';
import { checkSecureContextNames, resolveOptions, splitCrls, type CertificateFiles, type CertificateWatch, validateCertificateFiles, validateHost, validatePort, type ResolvedOptions, type TransportOptions } from './options';
import { SocketFactory, type AnySocket } from './tls/socket-factory';

/** Peer identities whose certificate expiry stats() remembers. */
const PEER_CERTIFICATES_TRACKED = 4096;

export type { EventInfo } from './inbound/server';

/** Typed events (`transport.on('deltas', (sender, deltas, info) => ...)`). */
export interface TransportEvents {
  deltas: [remotePeer: Sender, deltas: Delta[], info: EventInfo];
  digest: [remotePeer: Sender, digest: DigestEntry[], info: EventInfo];
  error: [error: Error];
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
  /** Every error emitted, by code (network and peer failures, ours and Node's). */
  errors: Record<string, number>;
  /** Inbound connections refused or evicted, by reason (`source-rate`, `source-connections`, `max-connections`, `evicted`, `closing`). */
  refusals: Record<string, number>;
  /** Peer ids passed on to listeners (at most maxPeers), and peer entries dropped past that budget. */
  peers: { known: number; dropped: number };
  /** Plaintext seen by a TLS transport (migration): connections, distinct sender ids, last time (ms since epoch). */
  plaintext: { connections: number; peers: number; lastSeen: number | undefined };
}

interface ListenOptions {
  /** Bind address; `''` means the transport's host, as in 0.1.6. */
  host?: string;
  /** Bind port; a decimal string is accepted, as in the constructor. */
  port?: number | string;
}

/**
 * A frame as bytes, terminator included, for the paths that queue or cork
 * frames: encoded once, the socket then copies bytes, not characters.
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
  readonly #pool: ConnectionPool | undefined;
  readonly #listener: Listener;
  /** TLS per-message connections not closed yet. */
  readonly #outbound = new Set<AnySocket>();
  /** TLS per-message connections not yet accepted (a rotation abandons them). */
  readonly #dialing = new Set<Dialing>();
  readonly #gate: OutboundGate;
  /** Plaintext per-message connections. */
  readonly #plainOnce: SendOnce;
  #closeWaiters: Array<() => void> = [];
  /** Fires at `tls.plaintext.until` to close the plaintext connections still open. */
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** When the active certificate expires (ms since the epoch), if it can be read. */
  #ownExpiry: number | undefined;
  /** Warns when this node's own certificate is expired, not yet valid, or expiring soon. */
  readonly #health = new OwnCertificateHealth(() => this.#options.tls?.context.cert, (warning) => this.#warn(warning));
  /** Certificate files followed (watchCertificates). */
  readonly #watches = new Set<CertificateWatch>();
  /** The id this node last sent as (localPeer.id): what a reloaded certificate must still name. */
  #localId: string | undefined;
  /** Peer certificates seen, by identity: the latest one's expiry (bounded). */
  readonly #peerCertificates = new Map<string, { expires: number; subject: string; fingerprint256: string }>();
  #closing = false;
  /** Set by close(), cleared by listen(): no frame is sent meanwhile. */
  #closed = false;
  #droppedAfterClose = 0;
  readonly #stats = {
    outbound: 0,
    resumed: 0,
    framesOut: 0,
    bytesOut: 0,
    errors: {} as Record<string, number>
  };

  /** Constructs and listens; returns the instance (0.1.6's `TcpTransport.listen`). */
  static listen (options?: TransportOptions, callback?: () => void): TcpTransport {
    const transport = new this(options);
    transport.listen(callback);
    return transport;
  }

  constructor (options?: TransportOptions) {
    super();
    this.#options = resolveOptions(options);
    this.host = this.#options.host;
    this.port = this.#options.port;
    this.#factory = new SocketFactory(this.#options.tls, this.#options.cluster);
    this.#gate = new OutboundGate(this.#options.outbound);
    this.#listener = new Listener({
      options: this.#options,
      factory: this.#factory,
      report: (error) => this.#report(error),
      deliver: (message, info) => this.#deliver(message, info),
      pastPlaintextDeadline: () => this.#pastDeadline(),
      notePeerCertificate: (certificate) => this.#notePeerCertificate(certificate)
    });
    this.#ownExpiry = this.#options.tls === undefined ? undefined : certificateExpiry(this.#options.tls.context.cert);
    // After the constructor returns, so that a 'warning' listener attached then hears it.
    if (this.#options.tls !== undefined) process.nextTick(() => this.#health.check(false));
    this.#plainOnce = new SendOnce({
      factory: this.#factory,
      connectTimeout: this.#options.connectTimeout,
      report: (error) => this.#report(error),
      dialing: () => { this.#stats.outbound++; },
      countOut: (bytes) => this.#countOut(bytes)
    });
    const keepAlive = this.#options.keepAlive;
    if (keepAlive) {
      this.#pool = new ConnectionPool({
        factory: this.#factory,
        connectTimeout: this.#options.connectTimeout,
        idleTimeout: keepAlive.idleTimeout,
        maxQueuedBytes: keepAlive.maxQueuedBytes,
        maxRemotes: this.#options.outbound.maxPooledRemotes,
        closeTimeout: this.#options.connectTimeout,
        gate: this.#gate,
        keyById: this.#keyById,
        checkServer: (peerId, host, port, pending, certificate) => this.#checkServer(peerId, host, port, pending, certificate),
        secure: () => this.#sendSecure(),
        report: (error) => this.#report(error),
        countOut: (bytes) => this.#countOut(bytes),
        dialing: () => { this.#stats.outbound++; },
        accepted: (socket) => this.#countAccepted(socket)
      });
    }
  }

  /** Listens on the advertised host and port; `options` override them for the bind only. */
  listen (callback?: () => void): this;
  listen (options?: ListenOptions | null, callback?: () => void): this;
  listen (options?: ListenOptions | null | (() => void), callback?: () => void): this {
    if (typeof options === 'function') {
      callback = options;
      options = undefined;
    }
    const bind = options ?? {};
    if (typeof bind !== 'object') throw new TypeError('listen options must be an object');
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('listen callback must be a function');
    const host = validateHost('listen options.host', bind.host, this.host);
    const port = validatePort('listen options.port', bind.port, this.port);
    if (this.server) throw new Error('transport is already listening; close() it first');
    this.#closed = false;
    this.#droppedAfterClose = 0;
    const tls = this.#options.tls;
    if (tls && tls.context.cert === undefined && tls.context.pfx === undefined) {
      // A send-only TLS transport may have no certificate; a server must.
      throw new TypeError('listen() in TLS mode needs options.tls.key and options.tls.cert (or pfx)');
    }

    const server = this.#listener.listen(host, port, (error) => this.emit('error', error), (address) => {
      // Port 0 advertised: peers must be told the port the system chose.
      if (this.port === 0 && bind.port === undefined) this.port = address.port;
      this.emit('listening');
    });
    this.server = server;
    this.#armPlaintextDeadline();
    if (tls) this.#health.check(true);
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
    if (typeof callback !== 'function') throw new TypeError('close callback must be a function');
    this.#closed = true;
    this.#closeWaiters.push(callback);
    if (this.#closing) return;
    this.#closing = true;
    let pending = 1;
    const done = (): void => {
      if (--pending > 0) return;
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
      this.#listener.close(done);
    }
    if (this.#pool) {
      pending++;
      this.#pool.close(done);
    }
    for (const watch of this.#watches) watch.close();
    this.#watches.clear();
    for (const socket of [...this.#outbound, ...this.#plainOnce.open]) {
      pending++;
      socket.once('close', done);
    }
    process.nextTick(done);
  }

  /** Sends `{ deltas, sender: { id, transport } }` to `remotePeer`. */
  deltas (remotePeer: unknown, localPeer: { id: string; transport?: unknown }, deltas: unknown): void {
    this.#localId = localPeer.id;
    this.rpc(remotePeer, { deltas, sender: { id: localPeer.id, transport: localPeer.transport } });
  }

  /** Sends `{ digest, sender: { id, transport } }` to `remotePeer`. */
  digest (remotePeer: unknown, localPeer: { id: string; transport?: unknown }, digest: unknown): void {
    this.#localId = localPeer.id;
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
    if ((peerId === undefined || peerId.length === 0) && this.#options.tls?.authorize === 'sender-id' && this.#sendSecure()) {
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
        // Circular, BigInt, or nested deeper than the stack: refuse, never
        // throw. Not JSON.stringify's error as the cause: it names the
        // payload's properties, and a payload's content stays out of errors.
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
    // Plaintext during a migration goes one connection per message even with
    // keepAlive: the receiver may still be 0.1.6, which reads one frame per connection.
    if (!secure) {
      if (this.#pool && !this.#factory.secure) this.#pool.send(peerId, host, port, line + '\r\n', size + 2);
      else this.#sendPlainOnce(peerId, host, port, line, size);
    } else if (this.#pool) {
      this.#pool.send(peerId, host, port, line + '\r\n', size + 2);
    } else {
      this.#sendOnce(peerId, host, port, encode(line, size));
    }
  }

  /**
   * Rotates key, certificate and CA: every new connection, inbound and
   * outbound, uses the new material. Cached TLS sessions and the server's
   * ticket keys are replaced, so no session outlives the rotation, and pooled
   * outbound connections are ended after what they were already handed.
   */
  setSecureContext (tlsOptions: SecureContextOptions): void {
    if (!this.#factory.secure) throw new TypeError('setSecureContext() needs a transport constructed with options.tls');
    if (typeof tlsOptions !== 'object' || tlsOptions === null) throw new TypeError('setSecureContext(tlsOptions): tlsOptions must be an object');
    checkSecureContextNames('setSecureContext(tlsOptions): tlsOptions', tlsOptions as Record<string, unknown>);
    if (this.#options.tls!.requestCert && 'ca' in tlsOptions && tlsOptions.ca === undefined && (tlsOptions.pfx ?? this.#options.tls!.context.pfx) === undefined) {
      throw new TypeError('setSecureContext(tlsOptions): tlsOptions.ca cannot be removed from a transport with options.tls.requestCert (any certificate from a public CA would be accepted)');
    }
    this.#factory.rotate(tlsOptions.crl === undefined ? tlsOptions : { ...tlsOptions, crl: splitCrls(tlsOptions.crl) as SecureContextOptions['crl'] });
    this.#ownExpiry = certificateExpiry(this.#options.tls!.context.cert);
    this.#health.check(this.server !== null);
    // Pooled connections all end after what they were handed (our own identity
    // may be what changed); those whose server no longer verifies are reported.
    this.#pool?.retireAll((socket, remote) => {
      const certificate = this.#factory.serverCertificate(socket as TLSSocket);
      const problem = this.#serverProblem(remote.expectedId ?? remote.peerId, remote.host, remote.port, certificate, this.#factory.serverChain(socket as TLSSocket));
      return problem === undefined ? undefined : new PeerUntrustedError(problem, subjectOf(certificate), remote.remote);
    });
    // Per-message dials still in their handshake start again with the new material.
    for (const dialing of [...this.#dialing]) dialing.abandon();
    this.#listener.recheck();
  }

  /**
   * Follows key, certificate, CA and optional CRL files: each change is
   * debounced, read (again if a file is half-written), validated, and swapped
   * in with setSecureContext(); a set that fails validation is refused with
   * ERR_CERT_RELOAD and the current material stays. close() stops it too.
   */
  watchCertificates (files: CertificateFiles): CertificateWatch {
    const tls = this.#options.tls;
    if (tls === undefined) throw new TypeError('watchCertificates() needs a transport constructed with options.tls');
    validateCertificateFiles(files);
    const watch = watchCertificates(files, {
      apply: (material) => this.setSecureContext(material),
      report: (error) => this.#report(error),
      // Under 'sender-id' peers will check the certificate against this node's id.
      expectedId: () => tls.authorize !== 'sender-id' ? undefined : this.#localId ?? subjectOf(parsePeerLike(tls.context.cert))
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
    const s = this.#stats;
    const l = this.#listener.stats;
    return {
      connections: { accepted: l.accepted, open: this.#listener.size, refused: l.refused, evicted: l.evicted, outbound: s.outbound, resumed: s.resumed, outboundOpen: this.#gate.inFlight, retiring: this.#pool?.retiringCount ?? 0 },
      frames: { in: l.framesIn, out: s.framesOut },
      bytes: { in: l.bytesIn, out: s.bytesOut },
      certificates: { expires: this.#ownExpiry, peerSoonest: this.#soonestPeerCertificate() },
      errors: { ...s.errors },
      refusals: { ...l.refusals },
      peers: { known: this.#listener.peerCount, dropped: l.peersDropped },
      plaintext: { connections: l.plaintextConnections, peers: this.#listener.plaintextPeerCount, lastSeen: l.plaintextLastSeen }
    };
  }

  #soonestPeerCertificate (): { expires: number; subject: string; fingerprint256: string } | undefined {
    let soonest: { expires: number; subject: string; fingerprint256: string } | undefined;
    for (const seen of this.#peerCertificates.values()) {
      if (soonest === undefined || seen.expires < soonest.expires) soonest = seen;
    }
    return soonest === undefined ? undefined : { ...soonest };
  }

  // ---------------------------------------------------------------- sending

  #countAccepted (socket: AnySocket): void {
    if ((socket as TLSSocket).isSessionReused?.()) this.#stats.resumed++;
  }

  #countOut (bytes: number): void {
    this.#stats.framesOut++;
    this.#stats.bytesOut += bytes;
  }

  /** TLS for a new outbound connection, unless a migration still sends plaintext. */
  #sendSecure (): boolean {
    const tls = this.#options.tls;
    if (!tls) return false;
    return !tls.plaintext.send || this.#pastDeadline();
  }

  /** Under an authorize policy, outbound connections and sessions belong to one peer id. */
  get #keyById (): boolean {
    return this.#options.tls !== undefined && this.#options.tls.authorize !== 'any';
  }

  #pastDeadline (): boolean {
    const until = this.#options.tls?.plaintext.until;
    return until !== undefined && Date.now() >= until;
  }

  /**
   * Outbound identity check, before anything is written: under 'sender-id'
   * the server's certificate must name the peer id we are sending to; a
   * function policy is asked with `direction: 'outbound'`.
   */
  #checkServer (peerId: string | undefined, host: string, port: number, pending: number, certificate: PeerCertificate | undefined): Error | undefined {
    if (certificate !== undefined) this.#notePeerCertificate(certificate);
    if (this.#serverAuthorized(peerId, host, port, certificate)) return undefined;
    return new PeerUnauthorizedError(peerId ?? '', { outbound: true, framesDropped: pending, remoteAddress: host, remotePort: port, peerId });
  }

  #serverAuthorized (peerId: string | undefined, host: string, port: number, certificate: PeerCertificate | undefined): boolean {
    const policy = this.#options.tls!.authorize;
    if (policy === 'any') return true;
    return isAuthorized(policy, { id: peerId!, transport: { host, port } }, certificate, { direction: 'outbound', remoteAddress: host, remotePort: port });
  }

  /** After a rotation: why an open connection's server would not be accepted now (CA, CRL, policy). */
  #serverProblem (peerId: string | undefined, host: string, port: number, certificate: PeerCertificate | undefined, chain: X509Certificate[]): string | undefined {
    return verifyChain(chain, this.#factory.trust) ?? (this.#serverAuthorized(peerId, host, port, certificate) ? undefined : 'authorize');
  }

  #notePeerCertificate (certificate: PeerCertificate): void {
    const expires = Date.parse(certificate.valid_to);
    if (Number.isNaN(expires)) return;
    const subject = subjectOf(certificate) ?? certificate.fingerprint256;
    const known = this.#peerCertificates;
    // Keyed by identity, so a peer's renewed certificate replaces its old one.
    known.delete(subject);
    known.set(subject, { expires, subject, fingerprint256: certificate.fingerprint256 });
    if (known.size > PEER_CERTIFICATES_TRACKED) known.delete(known.keys().next().value!);
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
      if (this.#pastDeadline()) this.#listener.cutPlaintext();
      else this.#armPlaintextDeadline();
    }, Math.min(wait, 0x7fffffff));
    this.#deadlineTimer.unref();
  }

  /**
   * Takes the outbound slots for one per-message connection, then calls
   * `send`; a refusal is reported with its one frame dropped.
   */
  #throughGate (peerId: string | undefined, host: string, port: number, send: (lease: Lease, address: string | undefined) => void): void {
    this.#gate.open(host, port, (refused, lease, address) => {
      if (refused !== undefined) this.#refusedByGate(refused, peerId);
      else send(lease!, address);
    });
  }

  #refusedByGate (refused: Error, peerId: string | undefined): void {
    this.#report(withFrames(withRemote(refused, { peerId }), { framesDropped: 1 }));
  }

  /** One plaintext connection per message (SendOnce), once the outbound gate lets it through. */
  #sendPlainOnce (peerId: string | undefined, host: string, port: number, line: string, size: number): void {
    // The default mode's hot path: decided at once unless a name must be resolved and checked.
    const now = this.#gate.openNow(host, port);
    if (now instanceof Lease) this.#plainOnce.send(host, port, peerId, line + '\r\n', size + 2, undefined, now);
    else if (now !== undefined) this.#refusedByGate(now, peerId);
    else this.#throughGate(peerId, host, port, (lease, address) => this.#plainOnce.send(host, port, peerId, line + '\r\n', size + 2, address, lease));
  }

  /** One TLS connection, one frame, then end (plaintext goes through SendOnce). */
  #sendOnce (peerId: string | undefined, host: string, port: number, frame: Buffer): void {
    this.#throughGate(peerId, host, port, (lease, address) => this.#dialOnce(peerId, host, port, address, frame, () => lease.release()));
  }

  #dialOnce (peerId: string | undefined, host: string, port: number, address: string | undefined, frame: Buffer, release: () => void): void {
    const timeout = this.#options.connectTimeout;
    const remote = { remoteAddress: host, remotePort: port, peerId };
    this.#stats.outbound++;
    // Set when a rotation hands this dial's outbound slots over to a new one.
    let handedOver = false;
    const dialing = dial(this.#factory, {
      host,
      port,
      ...(address === undefined ? {} : { address }),
      peerId,
      ...(this.#keyById && peerId !== undefined ? { expectedId: peerId } : {}),
      connectTimeout: timeout,
      secure: true,
      persistent: false,
      pendingFrames: () => 1,
      checkServer: (certificate) => this.#checkServer(peerId, host, port, 1, certificate)
    }, {
      accepted: (connected) => {
        this.#dialing.delete(dialing);
        this.#countAccepted(connected);
        let failed = false;
        let flushed = false;
        connected.on('error', (error) => {
          if (failed) return;
          failed = true;
          // The frame was written: lost for certain if the kernel never had it,
          // otherwise it may or may not have arrived.
          this.#report(withFrames(withRemote(error, remote), { framesWritten: 1, framesLost: flushed ? 0 : 1 }));
        });
        // Bounds the rest of the exchange: the frame flushed within `timeout`,
        // then the remote's close within `timeout`. Bytes back do not extend
        // it (a receiver never writes), so a remote that trickles bytes
        // cannot hold the socket.
        const expire = (): void => { connected.destroy(new ConnectTimeoutError(timeout, remote)); };
        let deadline = setTimeout(expire, timeout);
        connected.once('close', () => clearTimeout(deadline));
        // A gossip receiver never writes: read and drop, so that its FIN is seen.
        connected.on('data', () => {});
        this.#countOut(frame.length);
        connected.end(frame, (error?: Error | null) => {
          if (error) return;
          flushed = true;
          clearTimeout(deadline);
          if (!connected.destroyed) deadline = setTimeout(expire, timeout);
        });
      },
      failed: (error) => {
        this.#dialing.delete(dialing);
        // Nothing was written: the one frame is dropped.
        this.#report(withFrames(error, { framesDropped: 1 }));
      },
      rotated: () => {
        // Nothing was written: send the frame on a connection made with the
        // new material, which takes over this one's outbound slots.
        this.#dialing.delete(dialing);
        handedOver = true;
        if (this.#closing) release();
        else this.#dialOnce(peerId, host, port, address, frame, release);
      }
    });
    const socket = dialing.socket;
    this.#dialing.add(dialing);
    this.#outbound.add(socket);
    socket.once('close', () => {
      this.#outbound.delete(socket);
      if (!handedOver) release();
    });
  }

  /** A warning: to the transport's 'warning' listeners, or else to process.emitWarning (printed by Node). */
  #warn (warning: CertificateWarning): void {
    if (this.listenerCount('warning') > 0) this.emit('warning', warning);
    else process.emitWarning(warning);
  }

  /** Counts and emits one error. Network and peer failures all come through here. */
  #report (error: Error): void {
    const code = (error as { code?: unknown }).code;
    this.#count(typeof code === 'string' ? code : 'UNKNOWN');
    this.emit('error', error);
  }

  #count (code: string): void {
    this.#stats.errors[code] = (this.#stats.errors[code] ?? 0) + 1;
  }

  /** A valid, authorized message from the listener. */
  #deliver (message: Message, info: EventInfo): void {
    if (message.deltas !== undefined) this.emit('deltas', message.sender, message.deltas, info);
    else this.emit('digest', message.sender, message.digest, info);
  }
}
