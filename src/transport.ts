/**
 * TcpTransport: the 0.1.6 API over plain TCP, TLS or mutual TLS.
 *
 * Inbound data flows one way: socket (from the factory) -> frame decoder ->
 * message validation -> authorization -> event. Sending is the reverse:
 * payload -> size check -> connection (per message, or pooled) -> socket.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { PeerCertificate, SecureContextOptions, TLSSocket } from 'node:tls';
import { isAuthorized } from './authorize';
import { ConnectionPool } from './connection-pool';
import { dial } from './dial';
import {
  ConnectTimeoutError,
  FrameTooLargeError,
  HandshakeTimeoutError,
  IdleTimeoutError,
  InvalidMessageError,
  MalformedPeerError,
  ClusterMismatchError,
  PeerUnauthorizedError,
  PlaintextRefusedError,
  TlsHandshakeError,
  TransportError
} from './errors';
import { FrameDecoder, FrameOverflow } from './frame-decoder';
import { parseMessage, type Delta, type DigestEntry, type Sender } from './message';
import { TLS_OWN_KEYS, resolveOptions, validateHost, validatePort, type ResolvedOptions, type TransportOptions } from './options';
import { SocketFactory, type AnySocket } from './socket-factory';

/** The TLS record type of a handshake: the first byte of every TLS connection. */
const TLS_HANDSHAKE_BYTE = 0x16;
/** Sender ids remembered for stats().plaintext.peers, so the set stays bounded. */
const PLAINTEXT_PEERS_TRACKED = 4096;

/** Third argument of 'deltas' and 'digest': where the message came from. */
export interface EventInfo {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** The message arrived over TLS. */
  secure: boolean;
  /** The remote presented a certificate that `ca` signed (mutual TLS). */
  authorized: boolean;
  /** The remote's certificate, when it presented one. */
  certificate?: { subject: Record<string, string | string[]>; fingerprint256: string };
}

/** Typed events (`transport.on('deltas', (sender, deltas, info) => ...)`). */
export interface TransportEvents {
  deltas: [remotePeer: Sender, deltas: Delta[], info: EventInfo];
  digest: [remotePeer: Sender, digest: DigestEntry[], info: EventInfo];
  error: [error: Error];
  listening: [];
}

/** What `stats()` returns; every counter starts at 0 with the transport. */
export interface TransportStats {
  connections: {
    /** Inbound connections accepted by the listener. */
    accepted: number;
    /** Inbound connections held now (TLS handshakes in progress included). */
    open: number;
    /** Inbound connections closed at once: at maxConnections with none evictable, or while closing. */
    refused: number;
    /** Idle inbound connections closed to make room under maxConnections. */
    evicted: number;
    /** Outbound connections opened (per message, or pooled). */
    outbound: number;
    /** Outbound TLS connections that resumed a cached session. */
    resumed: number;
  };
  /** Frames delivered as events (in) and handed to a socket (out). */
  frames: { in: number; out: number };
  /** Bytes read from inbound connections (in) and frame bytes written (out). */
  bytes: { in: number; out: number };
  /** Errors emitted, by code (network and peer failures, ours and Node's). */
  refusals: Record<string, number>;
  /** Plaintext seen by a TLS transport (migration): connections, distinct sender ids, last time (ms since epoch). */
  plaintext: { connections: number; peers: number; lastSeen: number | undefined };
}

interface Inbound {
  raw: Socket;
  /** The socket frames are read from: `raw`, or the TLS socket over it. */
  socket: AnySocket | undefined;
  decoder: FrameDecoder;
  lastActive: number;
  closed: boolean;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  info: EventInfo | undefined;
  certificate: PeerCertificate | undefined;
  plaintext: boolean;
}

interface ListenOptions {
  host?: string;
  port?: number;
}

function remoteOf (rec: Inbound): { remoteAddress: string | undefined; remotePort: number | undefined } {
  return { remoteAddress: rec.remoteAddress, remotePort: rec.remotePort };
}

/** Adds the remote's address to an error that lacks it (Node's keep their code). */
function withRemote<E extends Error> (error: E, remote: { remoteAddress: string | undefined; remotePort: number | undefined }): E {
  const target = error as E & { remoteAddress?: string; remotePort?: number };
  if (target.remoteAddress === undefined && remote.remoteAddress !== undefined) target.remoteAddress = remote.remoteAddress;
  if (target.remotePort === undefined && remote.remotePort !== undefined) target.remotePort = remote.remotePort;
  return error;
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
  readonly #inbound = new Set<Inbound>();
  readonly #byRaw = new WeakMap<Socket, Inbound>();
  readonly #outbound = new Set<AnySocket>();
  readonly #plaintextPeers = new Set<string>();
  #closeWaiters: Array<() => void> = [];
  #closing = false;
  readonly #stats: Omit<TransportStats, 'connections' | 'plaintext'> & {
    connections: Omit<TransportStats['connections'], 'open'>;
    plaintext: Omit<TransportStats['plaintext'], 'peers'>;
  } = {
      connections: { accepted: 0, refused: 0, evicted: 0, outbound: 0, resumed: 0 },
      frames: { in: 0, out: 0 },
      bytes: { in: 0, out: 0 },
      refusals: {},
      plaintext: { connections: 0, lastSeen: undefined }
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
    const keepAlive = this.#options.keepAlive;
    if (keepAlive) {
      this.#pool = new ConnectionPool({
        factory: this.#factory,
        connectTimeout: this.#options.connectTimeout,
        idleTimeout: keepAlive.idleTimeout,
        maxQueuedBytes: keepAlive.maxQueuedBytes,
        secure: () => this.#sendSecure(),
        report: (error) => this.#report(error),
        countOut: (bytes) => this.#countOut(bytes),
        dialing: () => { this.#stats.connections.outbound++; },
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
    const tls = this.#options.tls;
    if (tls && tls.context.cert === undefined && tls.context.pfx === undefined) {
      // A send-only TLS transport may have no certificate; a server must.
      throw new TypeError('listen() in TLS mode needs options.tls.key and options.tls.cert (or pfx)');
    }

    const server = this.#factory.createServer((socket) => this.#onConnection(socket));
    if (this.#factory.secure) {
      this.#factory.createTlsServer(this.#options.handshakeTimeout, {
        secure: (socket) => this.#onSecure(socket),
        clientError: (error, socket) => this.#onTlsClientError(error, socket)
      });
    }
    this.server = server;
    server.on('error', (error) => this.emit('error', error));
    server.on('listening', () => {
      // Port 0 advertised: peers must be told the port the system chose.
      if (this.port === 0 && bind.port === undefined) this.port = (server.address() as AddressInfo).port;
      this.emit('listening');
    });
    server.listen(port, host, callback);
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
   * ones when they finish. The callback runs once, after everything is closed.
   */
  close (callback?: () => void): void {
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('close callback must be a function');
    if (callback) this.#closeWaiters.push(callback);
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
    const server = this.server;
    if (server) {
      pending++;
      this.server = null;
      server.close(() => done());
    }
    for (const rec of [...this.#inbound]) this.#drop(rec);
    if (this.#pool) {
      pending++;
      this.#pool.close(done);
    }
    for (const socket of this.#outbound) {
      pending++;
      socket.once('close', done);
    }
    process.nextTick(done);
  }

  /** Sends `{ deltas, sender: { id, transport } }` to `remotePeer`. */
  deltas (remotePeer: unknown, localPeer: { id: string; transport?: unknown }, deltas: unknown): void {
    this.rpc(remotePeer, { deltas, sender: { id: localPeer.id, transport: localPeer.transport } });
  }

  /** Sends `{ digest, sender: { id, transport } }` to `remotePeer`. */
  digest (remotePeer: unknown, localPeer: { id: string; transport?: unknown }, digest: unknown): void {
    this.rpc(remotePeer, { digest, sender: { id: localPeer.id, transport: localPeer.transport } });
  }

  /**
   * Sends one frame to `remotePeer.transport.host:port`. A string payload is
   * sent as it is; anything else is JSON-encoded. Failures are emitted as 'error'.
   */
  rpc (remotePeer: unknown, payload: unknown): void {
    const target = (remotePeer as { transport?: { host?: unknown; port?: unknown } } | null | undefined)?.transport;
    const host = target?.host;
    const port = validPort(target?.port);
    if (typeof host !== 'string' || host.length === 0 || port === undefined) {
      this.#report(new MalformedPeerError());
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
        this.#report(new InvalidMessageError('payload cannot be encoded as JSON', { remoteAddress: host, remotePort: port, cause: error }));
        return;
      }
    }
    if (line === undefined) {
      this.#report(new InvalidMessageError('payload must encode to one line of JSON', { remoteAddress: host, remotePort: port }));
      return;
    }
    const size = Buffer.byteLength(line);
    if (size > this.#options.maxFrameSize) {
      this.#report(new FrameTooLargeError(this.#options.maxFrameSize, `outbound frame of ${size} bytes exceeds maxFrameSize of ${this.#options.maxFrameSize}; not sent`, { remoteAddress: host, remotePort: port }));
      return;
    }
    // Encoded once, terminator included: the socket then copies bytes, not characters.
    const frame = Buffer.allocUnsafe(size + 2);
    frame.write(line, 0, size, 'utf8');
    frame[size] = 0x0d;
    frame[size + 1] = 0x0a;
    if (this.#pool) this.#pool.send(host, port, frame);
    else this.#sendOnce(host, port, frame);
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
    for (const key of TLS_OWN_KEYS) {
      if (key in tlsOptions) throw new TypeError(`setSecureContext(tlsOptions): tlsOptions.${key} cannot change after construction`);
    }
    this.#factory.rotate(tlsOptions);
    this.#pool?.retireAll();
  }

  /** A snapshot of the counters; see TransportStats. */
  stats (): TransportStats {
    const s = this.#stats;
    return {
      connections: { ...s.connections, open: this.#inbound.size },
      frames: { ...s.frames },
      bytes: { ...s.bytes },
      refusals: { ...s.refusals },
      plaintext: { ...s.plaintext, peers: this.#plaintextPeers.size }
    };
  }

  // ---------------------------------------------------------------- sending

  #countAccepted (socket: AnySocket): void {
    if ((socket as TLSSocket).isSessionReused?.()) this.#stats.connections.resumed++;
  }

  #countOut (bytes: number): void {
    this.#stats.frames.out++;
    this.#stats.bytes.out += bytes;
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

  /** 0.1.6's wire behaviour: one connection, one frame, then end. */
  #sendOnce (host: string, port: number, frame: Buffer): void {
    const timeout = this.#options.connectTimeout;
    this.#stats.connections.outbound++;
    const socket = dial(this.#factory, { host, port, connectTimeout: timeout, secure: this.#sendSecure(), persistent: false, pendingFrames: () => 1 }, {
      accepted: (connected) => {
        this.#countAccepted(connected);
        let failed = false;
        connected.on('error', (error) => {
          if (failed) return;
          failed = true;
          this.#report(withRemote(error, { remoteAddress: host, remotePort: port }));
        });
        // Bounds the rest of the exchange: a remote that never closes does not hold us.
        connected.setTimeout(timeout, () => connected.destroy(new ConnectTimeoutError(timeout, { remoteAddress: host, remotePort: port })));
        connected.on('data', () => {});
        this.#countOut(frame.length);
        connected.end(frame);
      },
      failed: (error) => this.#report(error)
    });
    this.#outbound.add(socket);
    socket.once('close', () => this.#outbound.delete(socket));
  }

  /** Counts and emits one error. Network and peer failures all come through here. */
  #report (error: Error): void {
    const code = (error as { code?: unknown }).code;
    const key = typeof code === 'string' ? code : 'UNKNOWN';
    this.#stats.refusals[key] = (this.#stats.refusals[key] ?? 0) + 1;
    this.emit('error', error);
  }

  // ---------------------------------------------------------------- receiving

  #onConnection (raw: Socket): void {
    if (this.#closing || (this.#inbound.size >= this.#options.maxConnections && !this.#evictOne())) {
      this.#stats.connections.refused++;
      raw.destroy();
      return;
    }
    this.#stats.connections.accepted++;
    const rec: Inbound = {
      raw,
      socket: undefined,
      decoder: new FrameDecoder(this.#options.maxFrameSize),
      lastActive: Date.now(),
      closed: false,
      remoteAddress: raw.remoteAddress,
      remotePort: raw.remotePort,
      info: undefined,
      certificate: undefined,
      plaintext: false
    };
    this.#inbound.add(rec);
    if (this.#factory.secure) this.#byRaw.set(raw, rec);
    raw.on('error', (error) => this.#fail(rec, error));
    raw.once('close', () => this.#forget(rec));
    if (!this.#factory.secure) {
      this.#readPlain(rec);
      return;
    }
    // Look at the first byte before choosing TLS: plaintext gets its own clear
    // refusal (or is served during a migration) instead of a TLS parse error.
    const timeout = this.#options.handshakeTimeout;
    raw.setTimeout(timeout, () => this.#fail(rec, new HandshakeTimeoutError(timeout, remoteOf(rec))));
    raw.once('readable', () => this.#sniff(rec));
  }

  #sniff (rec: Inbound): void {
    const raw = rec.raw;
    if (rec.closed) return;
    const chunk = raw.read() as Buffer | null;
    if (chunk === null) {
      // Closed before saying anything: a probe. In TLS mode that is a failed handshake.
      this.#fail(rec, new TlsHandshakeError('connection closed before the TLS handshake', remoteOf(rec)));
      return;
    }
    raw.unshift(chunk);
    raw.setTimeout(0);
    rec.lastActive = Date.now();
    if (chunk[0] === TLS_HANDSHAKE_BYTE) {
      // tls.Server feeds bytes already buffered on the socket to OpenSSL.
      this.#factory.upgrade(raw);
      return;
    }
    const plaintext = this.#options.tls!.plaintext;
    this.#stats.plaintext.connections++;
    this.#stats.plaintext.lastSeen = Date.now();
    if (!plaintext.accept || this.#pastDeadline()) {
      this.#fail(rec, new PlaintextRefusedError(remoteOf(rec)));
      return;
    }
    rec.plaintext = true;
    this.#readPlain(rec);
  }

  /** `tls.Server` wraps our raw socket; Node keeps the wrapped one as `_parent`. */
  #recordOf (socket: TLSSocket): Inbound | undefined {
    const parent = (socket as TLSSocket & { _parent?: Socket })._parent;
    return parent === undefined ? undefined : this.#byRaw.get(parent);
  }

  #onSecure (socket: TLSSocket): void {
    const rec = this.#recordOf(socket);
    if (rec === undefined || rec.closed) {
      socket.destroy();
      return;
    }
    rec.socket = socket;
    const expected = this.#factory.expectedAlpn;
    if (expected !== undefined && socket.alpnProtocol !== expected) {
      // A client that offered no ALPN at all completes the handshake; refuse it here.
      this.#fail(rec, new ClusterMismatchError(expected, socket.alpnProtocol ?? false, remoteOf(rec)));
      return;
    }
    const tls = this.#options.tls!;
    let certificate: PeerCertificate | undefined;
    if (tls.requestCert) {
      const cert = socket.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0) certificate = cert;
    }
    rec.certificate = certificate;
    const info: EventInfo = { ...remoteOf(rec), secure: true, authorized: socket.authorized };
    if (certificate) info.certificate = { subject: { ...certificate.subject } as Record<string, string | string[]>, fingerprint256: certificate.fingerprint256 };
    socket.once('close', () => this.#forget(rec));
    this.#read(rec, socket, info);
  }

  #onTlsClientError (error: NodeJS.ErrnoException, socket: TLSSocket): void {
    // With a 'tlsClientError' listener, Node leaves the socket open: close it.
    socket.destroy();
    const rec = this.#recordOf(socket);
    if (rec?.closed) return;
    const remote = rec ? remoteOf(rec) : { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
    const failure = error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
      ? new HandshakeTimeoutError(this.#options.handshakeTimeout, { ...remote, cause: error })
      : this.#factory.isClusterRefusal(error)
        ? new ClusterMismatchError(this.#factory.expectedAlpn!, false, { ...remote, cause: error })
        : new TlsHandshakeError(socket.authorizationError?.toString() ?? error.code ?? error.message, { ...remote, cause: error });
    if (rec) this.#fail(rec, failure);
    else this.#report(failure);
  }

  /** Frames straight from the accepted TCP socket: plain mode, or plaintext during a migration. */
  #readPlain (rec: Inbound): void {
    this.#read(rec, rec.raw, { ...remoteOf(rec), secure: false, authorized: false });
  }

  #read (rec: Inbound, socket: AnySocket, info: EventInfo): void {
    rec.socket = socket;
    rec.info = info;
    socket.setTimeout(this.#options.idleTimeout, () => this.#fail(rec, new IdleTimeoutError(this.#options.idleTimeout, remoteOf(rec))));
    socket.on('data', (chunk: Buffer) => this.#onData(rec, chunk));
    socket.on('end', () => this.#onEnd(rec));
    if (socket !== rec.raw) socket.on('error', (error) => this.#fail(rec, error));
  }

  #onData (rec: Inbound, chunk: Buffer): void {
    if (rec.closed) return;
    rec.lastActive = Date.now();
    this.#stats.bytes.in += chunk.length;
    let frames: Buffer[];
    try {
      frames = rec.decoder.push(chunk);
    } catch (error) {
      this.#fail(rec, this.#decodeError(rec, error));
      return;
    }
    for (let i = 0; i < frames.length && !rec.closed; i++) this.#deliver(rec, frames[i]!);
  }

  #onEnd (rec: Inbound): void {
    if (rec.closed) return;
    let last: Buffer | null;
    try {
      last = rec.decoder.end();
    } catch (error) {
      this.#fail(rec, this.#decodeError(rec, error));
      return;
    }
    if (last !== null) this.#deliver(rec, last);
  }

  #decodeError (rec: Inbound, error: unknown): Error {
    if (error instanceof FrameOverflow) return new FrameTooLargeError(error.limit, undefined, remoteOf(rec));
    return error as Error;
  }

  #deliver (rec: Inbound, frame: Buffer): void {
    let message;
    try {
      message = parseMessage(frame);
    } catch (error) {
      this.#fail(rec, withRemote(error as TransportError, remoteOf(rec)));
      return;
    }
    const tls = this.#options.tls;
    if (tls && !rec.plaintext && tls.authorize !== 'any' && !isAuthorized(tls.authorize, message.sender, rec.certificate)) {
      this.#fail(rec, new PeerUnauthorizedError(message.sender.id, remoteOf(rec)));
      return;
    }
    if (rec.plaintext) this.#notePlaintextPeer(message.sender.id);
    this.#stats.frames.in++;
    if (message.deltas !== undefined) this.emit('deltas', message.sender, message.deltas, rec.info!);
    else this.emit('digest', message.sender, message.digest, rec.info!);
  }

  #notePlaintextPeer (id: string): void {
    this.#stats.plaintext.lastSeen = Date.now();
    if (this.#plaintextPeers.size < PLAINTEXT_PEERS_TRACKED) this.#plaintextPeers.add(id);
  }

  /** Closes the idle connection that has waited longest; never one mid-frame. */
  #evictOne (): boolean {
    let victim: Inbound | undefined;
    for (const rec of this.#inbound) {
      if (rec.decoder.buffered > 0) continue;
      if (victim === undefined || rec.lastActive < victim.lastActive) victim = rec;
    }
    if (victim === undefined) return false;
    this.#stats.connections.evicted++;
    this.#drop(victim);
    return true;
  }

  /** Closes a connection without reporting an error. */
  #drop (rec: Inbound): void {
    rec.closed = true;
    this.#forget(rec);
    rec.socket?.destroy();
    rec.raw.destroy();
  }

  /** One error per connection, then close it. */
  #fail (rec: Inbound, error: Error): void {
    if (rec.closed) return;
    this.#drop(rec);
    this.#report(withRemote(error, remoteOf(rec)));
  }

  #forget (rec: Inbound): void {
    this.#inbound.delete(rec);
  }
}
