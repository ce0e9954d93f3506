/**
 * The inbound side: the mirror of connection-pool.ts.
 *
 * accept -> admission (per-source limits, global cap and eviction; all
 * before any byte is read) -> first byte (TLS or plaintext) -> TLS upgrade ->
 * read loop (frame decoder) -> message validation -> authorization -> peer
 * budget -> `deliver`, which the transport turns into an event.
 *
 * Nothing here emits: every failure goes to `report` (one per connection;
 * refusals aggregated per source), every valid message to `deliver`.
 *
 * Deadlines: one sweep timer for all connections, and a coarse clock it
 * updates. The read loop only stores that clock in the connection, so a
 * chunk costs no timer re-arm and no clock read.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { Admission, RefusalLog, chooseVictim } from './admission';
import { sourceOf } from '../net/addresses';
import { isAuthorized } from '../tls/identity';
import { channels, debug } from '../diagnostics';
import {
  ClusterMismatchError,
  ConnectionsRefusedError,
  FrameTimeoutError,
  FrameTooLargeError,
  HandshakeTimeoutError,
  IdleTimeoutError,
  PeerLimitError,
  PeerUnauthorizedError,
  PeerUntrustedError,
  PlaintextRefusedError,
  TlsHandshakeError,
  TransportError,
  withRemote
} from '../errors';
import { FrameDecoder, FrameOverflow } from './frame-decoder';
import { parseMessage, type Message, type Sender } from '../wire/message';
import type { ResolvedOptions } from '../options';
import { TLS_HANDSHAKE, TLS_REFUSAL_ALERT, looksLikeTls, tlsToPlain } from '../wire/protocol-sniff';
import { PeerLedger } from './peer-ledger';
import type { AnySocket, SocketFactory } from '../tls/socket-factory';
import { liveCertificateProblem, subjectOf } from '../tls/trust';

const CR = 0x0d;
/** Sender ids remembered for stats().plaintext.peers, so the set stays bounded. */
const PLAINTEXT_PEERS_TRACKED = 4096;
/** Refusals are reported at most once per source per this many ms (the first one at once). */
export const REFUSAL_REPORT_INTERVAL = 10000;
/** Distinct sources with a report of their own per interval; the rest are summed under '*'. */
const REFUSAL_SOURCES_REPORTED = 64;
/** Sources the admission table remembers at most (each a few dozen bytes). */
const SOURCES_TRACKED = 16384;

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
  /** A verified client certificate was seen (stats: the soonest-expiring one). */
  notePeerCertificate (certificate: PeerCertificate): void;
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
  /** Peer entries (senders, digest entries) dropped by the maxPeers budget. */
  peersDropped: number;
  plaintextConnections: number;
  plaintextLastSeen: number | undefined;
}

interface Connection {
  /** The listener holding it: the shared socket handlers below reach it from here. */
  listener: Listener;
  raw: Socket;
  /**
   * The gossipmonger id the remote's certificate speaks for, once a message
   * has passed `authorize: 'sender-id'` (unverified ids are not recorded).
   */
  peerId: string | undefined;
  /** IPv4 address or IPv6 /64 (admission.ts). */
  source: string;
  acceptedAt: number;
  /** A byte has been read (plaintext), or the TLS handshake is done. */
  started: boolean;
  /** When the unfinished frame's first byte arrived (coarse clock), 0 between frames. */
  frameStarted: number;
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
  /** The rotation generation of the secure context when it was accepted (TLS). */
  generation: number;
  /** The last sender delivered on it: what a function policy is asked again after a rotation. */
  lastSender: Sender | undefined;
}

/**
 * Milliseconds that only move forward (Date.now()'s scale): deadlines and
 * token buckets must not stall, or drain, when the wall clock is stepped back.
 */
function monotonicNow (): number {
  return performance.timeOrigin + performance.now();
}

function remoteOf (conn: Connection): { remoteAddress: string | undefined; remotePort: number | undefined } {
  return { remoteAddress: conn.remoteAddress, remotePort: conn.remotePort };
}

/**
 * A connection's sockets (the raw one, and the TLS one over it) point to it,
 * so one set of handlers serves every connection: Node calls a listener with
 * the socket as `this`. In plain mode a connection carries one message, so
 * four closures per connection were a measurable part of it.
 */
const kConnection = Symbol('gossipmonger-tls-transport:connection');
type ConnectionSocket = AnySocket & { [kConnection]: Connection };

export class Listener {
  server: Server | null = null;
  readonly stats: ListenerStats = {
    accepted: 0,
    refused: 0,
    evicted: 0,
    framesIn: 0,
    bytesIn: 0,
    refusals: {},
    peersDropped: 0,
    plaintextConnections: 0,
    plaintextLastSeen: undefined
  };

  private readonly connections = new Set<Connection>();
  private readonly byRaw = new WeakMap<Socket, Connection>();
  private readonly plaintextPeers = new Set<string>();
  private closing = false;
  private readonly admission: Admission;
  private readonly refusalLog = new RefusalLog(REFUSAL_REPORT_INTERVAL, REFUSAL_SOURCES_REPORTED);
  private readonly peerLog = new RefusalLog(REFUSAL_REPORT_INTERVAL, REFUSAL_SOURCES_REPORTED);
  private readonly peers: PeerLedger;
  /** The coarse clock: `monotonicNow()` as of the last sweep or accept. */
  private now = monotonicNow();
  private sweeper: NodeJS.Timeout | undefined;

  constructor (private readonly ctx: ListenerContext) {
    const options = ctx.options;
    this.admission = new Admission({
      maxPerSource: options.maxConnectionsPerSource,
      ratePerSource: options.connectionsPerSecondPerSource,
      maxSources: SOURCES_TRACKED
    });
    this.peers = new PeerLedger(options.maxPeers, options.maxFrameSize / 2);
  }

  /** Distinct peer ids passed on so far (see maxPeers). */
  get peerCount (): number {
    return this.peers.size;
  }

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
    this.startSweeper();
    return server;
  }

  /**
   * One timer for every deadline of every connection. It ticks at a quarter
   * of the shortest timeout (10 ms to 1 s), so a deadline is enforced within
   * 25% (at most 1 s) of its value.
   */
  private startSweeper (): void {
    const { idleTimeout, handshakeTimeout, frameTimeout } = this.ctx.options;
    const tick = Math.min(1000, Math.max(10, Math.floor(Math.min(idleTimeout, handshakeTimeout, frameTimeout) / 4)));
    this.sweeper = setInterval(() => this.sweep(), tick);
    this.sweeper.unref();
  }

  private sweep (): void {
    const now = this.now = monotonicNow();
    const { idleTimeout, handshakeTimeout, frameTimeout } = this.ctx.options;
    for (const conn of this.connections) {
      // Whichever deadline passed first decides the error.
      const startDue = conn.started ? Infinity : conn.acceptedAt + handshakeTimeout;
      const frameDue = conn.frameStarted === 0 ? Infinity : conn.frameStarted + frameTimeout;
      const idleDue = conn.lastActive + idleTimeout;
      const due = Math.min(startDue, frameDue, idleDue);
      if (due > now) continue;
      const remote = remoteOf(conn);
      this.fail(conn, due === startDue
        ? new HandshakeTimeoutError(handshakeTimeout, remote, conn.info !== undefined)
        : due === frameDue ? new FrameTimeoutError(frameTimeout, remote) : new IdleTimeoutError(idleTimeout, remote));
    }
    this.admission.sweep(now);
    for (const r of this.refusalLog.flush(now)) this.ctx.report(new ConnectionsRefusedError(r.source, r.count, r.reasons));
    for (const r of this.peerLog.flush(now)) this.ctx.report(new PeerLimitError(r.source, r.count, this.peers.maxPeers));
  }

  /** Stops accepting and closes every inbound connection; `callback` once the server has closed. */
  close (callback: () => void): void {
    this.closing = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    const server = this.server;
    this.server = null;
    for (const conn of [...this.connections]) this.drop(conn);
    if (server) server.close(() => callback());
    else process.nextTick(callback);
  }

  private refuse (raw: Socket, source: string, reason: string): void {
    this.stats.refused++;
    raw.destroy();
    this.noteRefusal(raw.remoteAddress, raw.remotePort, source, reason);
  }

  /** Counts a refused or evicted connection, and reports it (aggregated per source). */
  private noteRefusal (remoteAddress: string | undefined, remotePort: number | undefined, source: string, reason: string): void {
    this.stats.refusals[reason] = (this.stats.refusals[reason] ?? 0) + 1;
    if (channels.inboundRefused.hasSubscribers) channels.inboundRefused.publish({ remoteAddress, remotePort, reason });
    debug('refused %s:%d (%s)', remoteAddress, remotePort, reason);
    if (reason === 'closing') return;
    const report = this.refusalLog.note(source, reason, this.now);
    if (report !== undefined) this.ctx.report(new ConnectionsRefusedError(report.source, report.count, report.reasons, { remoteAddress, remotePort }));
  }

  // ------------------------------------------------------------ admission

  private onConnection (raw: Socket): void {
    const now = this.now = monotonicNow();
    const source = sourceOf(raw.remoteAddress);
    if (this.closing) {
      this.refuse(raw, source, 'closing');
      return;
    }
    // Source networks first: a source outside allowFrom costs an accept and a
    // close, never a handshake, a buffer or a share of the per-source budgets.
    const allowFrom = this.ctx.options.allowFrom;
    if (allowFrom !== undefined && (raw.remoteAddress === undefined || !allowFrom.allows(raw.remoteAddress))) {
      this.refuse(raw, source, 'not-allowed');
      return;
    }
    // Per-source limits next, so a refused connection costs no eviction.
    const refusal = this.admission.admit(source, now);
    if (refusal !== undefined) {
      this.refuse(raw, source, refusal);
      return;
    }
    if (this.connections.size >= this.ctx.options.maxConnections && !this.evictOne()) {
      this.admission.release(source);
      this.refuse(raw, source, 'max-connections');
      return;
    }
    this.stats.accepted++;
    const conn: Connection = {
      listener: this,
      raw,
      source,
      acceptedAt: now,
      started: false,
      frameStarted: 0,
      socket: undefined,
      decoder: new FrameDecoder(this.ctx.options.maxFrameSize),
      lastActive: now,
      closed: false,
      remoteAddress: raw.remoteAddress,
      remotePort: raw.remotePort,
      info: undefined,
      certificate: undefined,
      plaintext: false,
      error: undefined,
      generation: this.ctx.factory.generation,
      lastSender: undefined,
      peerId: undefined
    };
    this.connections.add(conn);
    if (channels.inboundAccepted.hasSubscribers) channels.inboundAccepted.publish({ remoteAddress: conn.remoteAddress, remotePort: conn.remotePort });
    const factory = this.ctx.factory;
    if (factory.secure) this.byRaw.set(raw, conn);
    (raw as ConnectionSocket)[kConnection] = conn;
    raw.on('error', Listener.onSocketError);
    raw.on('close', Listener.onSocketClose);
    if (!factory.secure) {
      this.readPlain(conn);
      return;
    }
    // Look at the first byte before choosing TLS: plaintext gets its own clear
    // refusal (or is served during a migration) instead of a TLS parse error.
    // The sweep bounds the wait (handshakeTimeout from accept).
    raw.once('readable', () => this.sniff(conn));
  }

  /**
   * Makes room at the cap: closes a connection of the source holding the most
   * (admission.ts, chooseVictim), so no source can keep others out by holding
   * slots, whether idle or dripping a frame.
   */
  private evictOne (): boolean {
    const victim = chooseVictim(this.connections, (source) => this.admission.openBy(source));
    if (victim === undefined) return false;
    this.stats.evicted++;
    this.drop(victim);
    this.noteRefusal(victim.remoteAddress, victim.remotePort, victim.source, 'evicted');
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
    conn.lastActive = this.now;
    if (chunk[0] === TLS_HANDSHAKE) {
      // tls.Server feeds bytes already buffered on the socket to OpenSSL.
      this.ctx.factory.upgrade(raw);
      return;
    }
    const plaintext = this.ctx.options.tls!.plaintext;
    this.stats.plaintextConnections++;
    this.stats.plaintextLastSeen = Date.now();
    if (!plaintext.accept || this.ctx.pastPlaintextDeadline()) {
      // Tell the sender in the only language it might check: a TLS alert.
      // A gossip receiver never writes, so our plaintext senders take any
      // TLS record back as "the remote speaks TLS" (ERR_PROTOCOL_MISMATCH).
      raw.write(TLS_REFUSAL_ALERT);
      this.fail(conn, new PlaintextRefusedError(remoteOf(conn)));
      return;
    }
    conn.plaintext = true;
    conn.started = true;
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
      // A closed one is already being reset by drop().
      if (conn === undefined) socket.destroy();
      return;
    }
    conn.socket = socket;
    // TLS 1.2 renegotiation would let a client make us pay a full handshake
    // again (Node allows three per 10 minutes); nginx, HAProxy and Go refuse it.
    // An attempt now errors the socket (ERR_TLS_RENEGOTIATION_DISABLED) and closes it.
    socket.disableRenegotiation();
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
    if (conn.generation !== factory.generation) {
      // The handshake began before a rotation and ran on the old material:
      // check the client's certificate again against the current CA and CRL.
      const problem = this.untrusted(conn, socket);
      if (problem !== undefined) {
        this.fail(conn, new PeerUntrustedError(problem, subjectOf(certificate), remoteOf(conn)));
        return;
      }
      conn.generation = factory.generation;
    }
    if (certificate !== undefined) this.ctx.notePeerCertificate(certificate);
    const info: EventInfo = { ...remoteOf(conn), secure: true, authorized: socket.authorized };
    if (certificate) info.certificate = { subject: { ...certificate.subject } as Record<string, string | string[]>, fingerprint256: certificate.fingerprint256 };
    (socket as ConnectionSocket)[kConnection] = conn;
    socket.on('close', Listener.onSocketClose);
    this.read(conn, socket, info);
  }

  private onTlsClientError (error: NodeJS.ErrnoException, socket: TLSSocket): void {
    // With a 'tlsClientError' listener, Node leaves the socket open: close it
    // (ours through fail(), which resets a connection whose handshake did not finish).
    // A closed one is already being reset by drop(); destroying it here would end it first.
    const conn = this.connectionOf(socket);
    if (conn === undefined) socket.destroy();
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
    this.read(conn, conn.raw, { remoteAddress: conn.remoteAddress, remotePort: conn.remotePort, secure: false, authorized: false });
  }

  private read (conn: Connection, socket: AnySocket, info: EventInfo): void {
    conn.socket = socket;
    conn.info = info;
    // TLS: the handshake is done. Plain: the sweep waits for the first byte.
    if (socket !== conn.raw) conn.started = true;
    conn.lastActive = this.now;
    socket.on('data', Listener.onSocketData);
    socket.on('end', Listener.onSocketEnd);
    if (socket !== conn.raw) socket.on('error', Listener.onSocketError);
  }

  // The shared socket handlers (`this` is the socket; see kConnection).

  private static onSocketData (this: ConnectionSocket, chunk: Buffer): void {
    const conn = this[kConnection];
    conn.listener.onData(conn, chunk);
  }

  private static onSocketEnd (this: ConnectionSocket): void {
    const conn = this[kConnection];
    conn.listener.onEnd(conn);
  }

  private static onSocketError (this: ConnectionSocket, error: Error): void {
    const conn = this[kConnection];
    conn.listener.fail(conn, error);
  }

  /** 'close' of the raw socket or of the TLS one over it: forget() runs once either way. */
  private static onSocketClose (this: ConnectionSocket): void {
    const conn = this[kConnection];
    conn.listener.forget(conn);
  }

  private onData (conn: Connection, chunk: Buffer): void {
    if (conn.closed) return;
    if (!conn.started) {
      // The first chunk of a plain connection (a TLS one has started at its handshake).
      conn.started = true;
      if (chunk[0] === TLS_HANDSHAKE && looksLikeTls(chunk)) {
        // A ClientHello on a plain port: the peer has options.tls and we do not.
        this.fail(conn, tlsToPlain(remoteOf(conn)));
        return;
      }
    }
    const now = this.now;
    this.stats.bytesIn += chunk.length;
    let frames: Buffer[];
    const decoder = conn.decoder;
    try {
      frames = decoder.push(chunk);
    } catch (error) {
      this.refuseFrame(conn, this.decodeError(conn, error));
      return;
    }
    // The frame deadline starts at a frame's first byte; later bytes never move it.
    if (decoder.buffered === 0) conn.frameStarted = 0;
    else if (conn.frameStarted === 0 || frames.length > 0) conn.frameStarted = now;
    // Empty lines (a lone "\r" may start one) are not activity: a "\n" every
    // few seconds would otherwise hold a slot forever without a message.
    if (frames.length > 0 || decoder.buffered > 1 || (decoder.buffered === 1 && chunk[chunk.length - 1] !== CR)) conn.lastActive = now;
    for (let i = 0; i < frames.length && !conn.closed; i++) this.onFrame(conn, frames[i]!);
  }

  private onEnd (conn: Connection): void {
    if (conn.closed) return;
    let last: Buffer | null;
    try {
      last = conn.decoder.end();
    } catch (error) {
      this.refuseFrame(conn, this.decodeError(conn, error));
      return;
    }
    if (last !== null) this.onFrame(conn, last);
    // The sender has said all it will, and a receiver writes nothing back:
    // close now. On plain TCP that is the FIN that Node's automatic end()
    // would send, without its shutdown() call and the stream's finish round
    // (one connection per message makes that a measurable part of it). A TLS
    // socket is left to end on its own, with its close_notify.
    if (!conn.closed && conn.socket === conn.raw) conn.raw.destroy();
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
      this.refuseFrame(conn, error as TransportError);
      return;
    }
    const tls = this.ctx.options.tls;
    if (tls && !conn.plaintext && tls.authorize !== 'any' &&
      !isAuthorized(tls.authorize, message.sender, conn.certificate, { direction: 'inbound', ...remoteOf(conn) })) {
      this.refuseFrame(conn, new PeerUnauthorizedError(message.sender.id, remoteOf(conn)));
      return;
    }
    if (conn.plaintext && this.ctx.pastPlaintextDeadline()) {
      // The deadline timer closes plaintext connections at `until`; a frame
      // read in the same turn as the deadline passed is refused here.
      this.refuseFrame(conn, new PlaintextRefusedError(remoteOf(conn)));
      return;
    }
    conn.lastSender = message.sender;
    if (conn.plaintext) this.notePlaintextPeer(message.sender.id);
    else if (tls?.authorize === 'sender-id') conn.peerId = message.sender.id;
    const verdict = this.peers.admit(message);
    if (verdict.dropped > 0) this.notePeersDropped(conn, verdict.dropped);
    if (verdict.message === undefined) return;
    this.stats.framesIn++;
    this.ctx.deliver(verdict.message, conn.info!);
  }

  /** Peer entries dropped by the maxPeers budget: counted, and reported aggregated per source. */
  private notePeersDropped (conn: Connection, dropped: number): void {
    this.stats.peersDropped += dropped;
    const report = this.peerLog.note(conn.source, 'max-peers', this.now, dropped);
    if (report !== undefined) this.ctx.report(new PeerLimitError(report.source, report.count, this.peers.maxPeers, remoteOf(conn)));
  }

  private notePlaintextPeer (id: string): void {
    this.stats.plaintextLastSeen = Date.now();
    if (this.plaintextPeers.size < PLAINTEXT_PEERS_TRACKED) this.plaintextPeers.add(id);
  }

  // ------------------------------------------------------------ rotation and deadlines

  /**
   * Why a TLS connection's client certificate would not be accepted now:
   * the current CA and CRL, then the authorize policy for the last sender it
   * spoke for. Undefined when it still would be, or when there is no client
   * certificate to check (no requestCert).
   */
  private untrusted (conn: Connection, socket: TLSSocket): string | undefined {
    const tls = this.ctx.options.tls!;
    if (!tls.requestCert) return undefined;
    const problem = liveCertificateProblem(socket.getPeerCertificate(true), this.ctx.factory.trust);
    if (problem !== undefined) return problem;
    if (tls.authorize !== 'any' && conn.lastSender !== undefined &&
      !isAuthorized(tls.authorize, conn.lastSender, conn.certificate, { direction: 'inbound', ...remoteOf(conn) })) return 'authorize';
    return undefined;
  }

  /**
   * After a rotation: every open TLS connection whose client certificate no
   * longer verifies (new CA, CRL, or policy) is closed and reported once.
   * Handshakes still in progress are checked when they finish (onSecure).
   * Returns how many were closed.
   */
  recheck (): number {
    let closed = 0;
    const factory = this.ctx.factory;
    for (const conn of [...this.connections]) {
      if (conn.closed || conn.plaintext || conn.info === undefined || !conn.info.secure) continue;
      const problem = this.untrusted(conn, conn.socket as TLSSocket);
      if (problem === undefined) {
        conn.generation = factory.generation;
        continue;
      }
      closed++;
      this.fail(conn, new PeerUntrustedError(problem, subjectOf(conn.certificate), remoteOf(conn)));
    }
    return closed;
  }

  /** `tls.plaintext.until` has passed: every plaintext connection is closed with ERR_PLAINTEXT_REFUSED. */
  cutPlaintext (): void {
    for (const conn of [...this.connections]) {
      if (conn.plaintext && !conn.closed) this.fail(conn, new PlaintextRefusedError(remoteOf(conn)));
    }
  }

  // ------------------------------------------------------------ closing

  /** Closes a connection without reporting an error. */
  private drop (conn: Connection): void {
    conn.closed = true;
    this.forget(conn);
    const { raw, socket } = conn;
    if (conn.started && conn.frameStarted === 0) {
      // Between frames: nothing the sender wrote is left unread.
      socket?.destroy();
      raw.destroy();
      return;
    }
    // Mid-handshake or mid-frame: reset, not end. The sender must learn that
    // what it wrote was not taken; an end reads as the normal close of an
    // exchange. (A resumed TLS 1.3 client writes its frame before the server
    // has finished the handshake: with a partition outlasting our
    // handshakeTimeout, an end made it count that frame as delivered.)
    // Deferred: resetting the TCP handle from inside a TLS callback crashes
    // Node 20. Nothing is read meanwhile.
    raw.pause();
    socket?.pause();
    setImmediate(() => {
      if (!raw.destroyed) raw.resetAndDestroy();
      socket?.destroy();
    });
  }

  /** A frame refused: published on the frame:refused channel, then the connection fails. */
  private refuseFrame (conn: Connection, error: Error): void {
    if (conn.closed) return;
    withRemote(error, remoteOf(conn));
    if (channels.frameRefused.hasSubscribers) channels.frameRefused.publish({ ...remoteOf(conn), error });
    debug('frame from %s:%d refused: %s', conn.remoteAddress, conn.remotePort, (error as NodeJS.ErrnoException).code ?? error.message);
    this.fail(conn, error);
  }

  /** One error per connection, then close it. */
  private fail (conn: Connection, error: Error): void {
    if (conn.closed) return;
    const failure = withRemote(error, { ...remoteOf(conn), peerId: conn.peerId });
    conn.error = failure;
    this.drop(conn);
    this.ctx.report(failure);
  }

  private forget (conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    this.admission.release(conn.source);
    if (channels.inboundClosed.hasSubscribers) channels.inboundClosed.publish({ ...remoteOf(conn), error: conn.error });
  }
}
