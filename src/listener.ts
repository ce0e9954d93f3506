/**
 * The inbound side: the mirror of connection-pool.ts.
 *
 * accept -> admission (cap, eviction) -> first byte (TLS or plaintext) ->
 * TLS upgrade -> read loop (frame decoder) -> message validation ->
 * authorization -> `deliver`, which the transport turns into an event.
 *
 * Nothing here emits: every failure goes to `report` (one per connection),
 * every valid message to `deliver`.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { isAuthorized } from './authorize';
import { channels, debug } from './diagnostics';
import {
  ClusterMismatchError,
  FrameTooLargeError,
  HandshakeTimeoutError,
  IdleTimeoutError,
  PeerUnauthorizedError,
  PlaintextRefusedError,
  TlsHandshakeError,
  TransportError,
  withRemote
} from './errors';
import { FrameDecoder, FrameOverflow } from './frame-decoder';
import { parseMessage, type Message } from './message';
import type { ResolvedOptions } from './options';
import type { AnySocket, SocketFactory } from './socket-factory';

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

/** What the listener needs from the transport that owns it. */
export interface ListenerContext {
  readonly options: ResolvedOptions;
  readonly factory: SocketFactory;
  /** Counts and emits one error. */
  report (error: Error): void;
  /** A valid, authorized message: emit it. */
  deliver (message: Message, info: EventInfo): void;
  /** True past `tls.plaintext.until`. */
  pastPlaintextDeadline (): boolean;
}

/** Inbound counters; the transport's stats() copies them. */
export interface ListenerStats {
  accepted: number;
  refused: number;
  evicted: number;
  framesIn: number;
  bytesIn: number;
  /** Inbound connections refused or evicted, by reason. */
  refusals: Record<string, number>;
  plaintextConnections: number;
  plaintextLastSeen: number | undefined;
}

interface Connection {
  raw: Socket;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** The socket frames are read from: `raw`, or the TLS socket over it. */
  socket: AnySocket | undefined;
  decoder: FrameDecoder;
  lastActive: number;
  closed: boolean;
  info: EventInfo | undefined;
  certificate: PeerCertificate | undefined;
  plaintext: boolean;
  /** Why the connection was closed, when it failed. */
  error: Error | undefined;
}

function remoteOf (conn: Connection): { remoteAddress: string | undefined; remotePort: number | undefined } {
  return { remoteAddress: conn.remoteAddress, remotePort: conn.remotePort };
}

export class Listener {
  server: Server | null = null;
  readonly stats: ListenerStats = {
    accepted: 0,
    refused: 0,
    evicted: 0,
    framesIn: 0,
    bytesIn: 0,
    refusals: {},
    plaintextConnections: 0,
    plaintextLastSeen: undefined
  };

  private readonly connections = new Set<Connection>();
  private readonly byRaw = new WeakMap<Socket, Connection>();
  private readonly plaintextPeers = new Set<string>();
  private closing = false;

  constructor (private readonly ctx: ListenerContext) {}

  /** Inbound connections held now, TLS handshakes in progress included. */
  get size (): number {
    return this.connections.size;
  }

  /** Distinct sender ids seen in plaintext (bounded). */
  get plaintextPeerCount (): number {
    return this.plaintextPeers.size;
  }

  /** Creates the server and binds it; `onListening` runs once it is up. */
  listen (host: string, port: number, onError: (error: Error) => void, onListening: (address: AddressInfo) => void): Server {
    const { factory, options } = this.ctx;
    this.closing = false;
    const server = factory.createServer((socket) => this.onConnection(socket));
    if (factory.secure) {
      factory.createTlsServer(options.handshakeTimeout, {
        secure: (socket) => this.onSecure(socket),
        clientError: (error, socket) => this.onTlsClientError(error, socket)
      });
    }
    this.server = server;
    server.on('error', onError);
    server.on('listening', () => onListening(server.address() as AddressInfo));
    server.listen(port, host);
    return server;
  }

  /** Stops accepting and closes every inbound connection; `callback` once the server has closed. */
  close (callback: () => void): void {
    this.closing = true;
    const server = this.server;
    this.server = null;
    for (const conn of [...this.connections]) this.drop(conn);
    if (server) server.close(() => callback());
    else process.nextTick(callback);
  }

  private refuse (raw: Socket, reason: string): void {
    this.stats.refused++;
    this.count(reason);
    if (channels.inboundRefused.hasSubscribers) channels.inboundRefused.publish({ remoteAddress: raw.remoteAddress, remotePort: raw.remotePort, reason });
    debug('refused %s:%d (%s)', raw.remoteAddress, raw.remotePort, reason);
    raw.destroy();
  }

  private count (reason: string): void {
    this.stats.refusals[reason] = (this.stats.refusals[reason] ?? 0) + 1;
  }

  // ------------------------------------------------------------ admission

  private onConnection (raw: Socket): void {
    if (this.closing) {
      this.refuse(raw, 'closing');
      return;
    }
    // Source networks first: a refused source costs an accept and a close,
    // never a handshake or a buffer.
    const allowFrom = this.ctx.options.allowFrom;
    if (allowFrom !== undefined && (raw.remoteAddress === undefined || !allowFrom.allows(raw.remoteAddress))) {
      this.refuse(raw, 'not-allowed');
      return;
    }
    if (this.connections.size >= this.ctx.options.maxConnections && !this.evictOne()) {
      this.refuse(raw, 'max-connections');
      return;
    }
    this.stats.accepted++;
    const conn: Connection = {
      raw,
      socket: undefined,
      decoder: new FrameDecoder(this.ctx.options.maxFrameSize),
      lastActive: Date.now(),
      closed: false,
      remoteAddress: raw.remoteAddress,
      remotePort: raw.remotePort,
      info: undefined,
      certificate: undefined,
      plaintext: false,
      error: undefined
    };
    this.connections.add(conn);
    if (channels.inboundAccepted.hasSubscribers) channels.inboundAccepted.publish({ remoteAddress: conn.remoteAddress, remotePort: conn.remotePort });
    const factory = this.ctx.factory;
    if (factory.secure) this.byRaw.set(raw, conn);
    raw.on('error', (error) => this.fail(conn, error));
    raw.once('close', () => this.forget(conn));
    if (!factory.secure) {
      this.readPlain(conn);
      return;
    }
    // Look at the first byte before choosing TLS: plaintext gets its own clear
    // refusal (or is served during a migration) instead of a TLS parse error.
    const timeout = this.ctx.options.handshakeTimeout;
    raw.setTimeout(timeout, () => this.fail(conn, new HandshakeTimeoutError(timeout, remoteOf(conn))));
    raw.once('readable', () => this.sniff(conn));
  }

  /** Closes the idle connection that has waited longest; never one mid-frame. */
  private evictOne (): boolean {
    let victim: Connection | undefined;
    for (const conn of this.connections) {
      if (conn.decoder.buffered > 0) continue;
      if (victim === undefined || conn.lastActive < victim.lastActive) victim = conn;
    }
    if (victim === undefined) return false;
    this.stats.evicted++;
    this.count('evicted');
    this.drop(victim);
    return true;
  }

  // ------------------------------------------------------------ TLS or plaintext

  private sniff (conn: Connection): void {
    const raw = conn.raw;
    if (conn.closed) return;
    const chunk = raw.read() as Buffer | null;
    if (chunk === null) {
      // Closed before saying anything: a probe. In TLS mode that is a failed handshake.
      this.fail(conn, new TlsHandshakeError('connection closed before the TLS handshake', remoteOf(conn)));
      return;
    }
    raw.unshift(chunk);
    raw.setTimeout(0);
    conn.lastActive = Date.now();
    if (chunk[0] === TLS_HANDSHAKE_BYTE) {
      // tls.Server feeds bytes already buffered on the socket to OpenSSL.
      this.ctx.factory.upgrade(raw);
      return;
    }
    const plaintext = this.ctx.options.tls!.plaintext;
    this.stats.plaintextConnections++;
    this.stats.plaintextLastSeen = Date.now();
    if (!plaintext.accept || this.ctx.pastPlaintextDeadline()) {
      this.fail(conn, new PlaintextRefusedError(remoteOf(conn)));
      return;
    }
    conn.plaintext = true;
    this.readPlain(conn);
  }

  /** `tls.Server` wraps our raw socket; Node keeps the wrapped one as `_parent`. */
  private connectionOf (socket: TLSSocket): Connection | undefined {
    const parent = (socket as TLSSocket & { _parent?: Socket })._parent;
    return parent === undefined ? undefined : this.byRaw.get(parent);
  }

  private onSecure (socket: TLSSocket): void {
    const conn = this.connectionOf(socket);
    if (conn === undefined || conn.closed) {
      socket.destroy();
      return;
    }
    conn.socket = socket;
    const factory = this.ctx.factory;
    const expected = factory.expectedAlpn;
    if (expected !== undefined && socket.alpnProtocol !== expected) {
      // A client that offered no ALPN at all completes the handshake; refuse it here.
      this.fail(conn, new ClusterMismatchError(expected, socket.alpnProtocol ?? false, remoteOf(conn)));
      return;
    }
    let certificate: PeerCertificate | undefined;
    if (this.ctx.options.tls!.requestCert) {
      const cert = socket.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0) certificate = cert;
    }
    conn.certificate = certificate;
    const info: EventInfo = { ...remoteOf(conn), secure: true, authorized: socket.authorized };
    if (certificate) info.certificate = { subject: { ...certificate.subject } as Record<string, string | string[]>, fingerprint256: certificate.fingerprint256 };
    socket.once('close', () => this.forget(conn));
    this.read(conn, socket, info);
  }

  private onTlsClientError (error: NodeJS.ErrnoException, socket: TLSSocket): void {
    // With a 'tlsClientError' listener, Node leaves the socket open: close it.
    socket.destroy();
    const conn = this.connectionOf(socket);
    if (conn?.closed) return;
    const remote = conn ? remoteOf(conn) : { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
    const factory = this.ctx.factory;
    const failure = error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
      ? new HandshakeTimeoutError(this.ctx.options.handshakeTimeout, { ...remote, cause: error })
      : factory.isClusterRefusal(error)
        ? new ClusterMismatchError(factory.expectedAlpn!, false, { ...remote, cause: error })
        : new TlsHandshakeError(socket.authorizationError?.toString() ?? error.code ?? error.message, { ...remote, cause: error });
    if (conn) this.fail(conn, failure);
    else this.ctx.report(failure);
  }

  // ------------------------------------------------------------ read loop

  /** Frames straight from the accepted TCP socket: plain mode, or plaintext during a migration. */
  private readPlain (conn: Connection): void {
    this.read(conn, conn.raw, { ...remoteOf(conn), secure: false, authorized: false });
  }

  private read (conn: Connection, socket: AnySocket, info: EventInfo): void {
    conn.socket = socket;
    conn.info = info;
    const idle = this.ctx.options.idleTimeout;
    socket.setTimeout(idle, () => this.fail(conn, new IdleTimeoutError(idle, remoteOf(conn))));
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('end', () => this.onEnd(conn));
    if (socket !== conn.raw) socket.on('error', (error) => this.fail(conn, error));
  }

  private onData (conn: Connection, chunk: Buffer): void {
    if (conn.closed) return;
    conn.lastActive = Date.now();
    this.stats.bytesIn += chunk.length;
    let frames: Buffer[];
    try {
      frames = conn.decoder.push(chunk);
    } catch (error) {
      this.fail(conn, this.decodeError(conn, error));
      return;
    }
    for (let i = 0; i < frames.length && !conn.closed; i++) this.onFrame(conn, frames[i]!);
  }

  private onEnd (conn: Connection): void {
    if (conn.closed) return;
    let last: Buffer | null;
    try {
      last = conn.decoder.end();
    } catch (error) {
      this.fail(conn, this.decodeError(conn, error));
      return;
    }
    if (last !== null) this.onFrame(conn, last);
  }

  private decodeError (conn: Connection, error: unknown): Error {
    if (error instanceof FrameOverflow) return new FrameTooLargeError(error.limit, undefined, remoteOf(conn));
    return error as Error;
  }

  /** One complete frame: validate, authorize, deliver. */
  private onFrame (conn: Connection, frame: Buffer): void {
    let message: Message;
    try {
      message = parseMessage(frame);
    } catch (error) {
      this.fail(conn, error as TransportError);
      return;
    }
    const tls = this.ctx.options.tls;
    if (tls && !conn.plaintext && tls.authorize !== 'any' && !isAuthorized(tls.authorize, message.sender, conn.certificate)) {
      this.fail(conn, new PeerUnauthorizedError(message.sender.id, remoteOf(conn)));
      return;
    }
    if (conn.plaintext) this.notePlaintextPeer(message.sender.id);
    this.stats.framesIn++;
    this.ctx.deliver(message, conn.info!);
  }

  private notePlaintextPeer (id: string): void {
    this.stats.plaintextLastSeen = Date.now();
    if (this.plaintextPeers.size < PLAINTEXT_PEERS_TRACKED) this.plaintextPeers.add(id);
  }

  // ------------------------------------------------------------ closing

  /** Closes a connection without reporting an error. */
  private drop (conn: Connection): void {
    conn.closed = true;
    this.forget(conn);
    conn.socket?.destroy();
    conn.raw.destroy();
  }

  /** One error per connection, then close it. */
  private fail (conn: Connection, error: Error): void {
    if (conn.closed) return;
    const failure = withRemote(error, remoteOf(conn));
    conn.error = failure;
    this.drop(conn);
    this.ctx.report(failure);
  }

  private forget (conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    if (channels.inboundClosed.hasSubscribers) channels.inboundClosed.publish({ ...remoteOf(conn), error: conn.error });
  }
}
