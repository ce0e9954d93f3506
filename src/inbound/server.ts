/**
 * The inbound server: listens, admits, evicts, sweeps deadlines, and owns
 * the counters. Each admitted socket becomes a Connection (connection.ts),
 * the per-connection state machine that reads and checks frames.
 *
 * accept -> admission (allowFrom, per-source limits, global cap and
 * eviction; all before any byte is read) -> Connection (first byte, TLS
 * handshake, read loop, frame checks) -> membership (ids not proven are held
 * back) -> peer ledger (maxPeers) -> `deliver`, which the transport turns into
 * an event. The outbound mirror is outbound/pool.ts.
 *
 * Nothing here emits: every failure goes to `report` (one per connection;
 * refusals aggregated per source), every valid message to `deliver`.
 *
 * Deadlines: one sweep timer for all connections, and a coarse clock it
 * updates. The read loop only stores that clock in the connection, so a
 * chunk costs no timer re-arm and no clock read.
 *
 * TLS handshakes in progress are bounded (`maxHandshakes`): past it, a
 * connection whose ClientHello has arrived waits, first come first served,
 * for one to finish, so a burst is served in order instead of every
 * handshake slowing down together until clients time out and dial again. A
 * connection never waits more than a quarter of `handshakeTimeout`: past
 * that its handshake starts anyway, so handshakes an attacker keeps open
 * cannot hold others back for longer.
 *
 * Links (tls/link.ts): an inbound link bound by its first frame is handed
 * to the transport (`bindLink`), whose pool may then write on it; and the
 * read side of our own dialled links lives here too (`readOutbound`), so
 * that every frame read, either way, passes the same checks and deadlines.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { channels } from '../diagnostics';
import {
  ClusterMismatchError,
  ConnectionsRefusedError,
  FrameTimeoutError,
  HandshakeTimeoutError,
  IdleTimeoutError,
  PeerLimitError,
  PeerUntrustedError,
  PlaintextRefusedError,
  TlsHandshakeError
} from '../errors';
import { sourceOf } from '../net/addresses';
import type { ResolvedOptions } from '../options';
import type { PeerCertificate } from 'node:tls';
import type { IdentityPolicy } from '../tls/identity';
import { linkRank, type PeerLink } from '../tls/link';
import type { SocketFactory } from '../tls/socket-factory';
import { subjectOf } from '../tls/trust';
import type { Message, Sender } from '../wire/message';
import { Admission, RefusalLog, chooseVictim } from './admission';
import { Connection, type ConnectionHost, type EventInfo } from './connection';
import { Membership, type Origin } from './membership';
import { PeerLedger } from './peer-ledger';

export type { EventInfo } from './connection';

/** Sender ids remembered for stats().plaintext.peers, so the set stays bounded. */
const PLAINTEXT_PEERS_TRACKED = 4096;
/** Refusals are reported at most once per source per this many ms (the first one at once). */
export const REFUSAL_REPORT_INTERVAL = 10000;
/** Distinct sources with a report of their own per interval; the rest are summed under '*'. */
const REFUSAL_SOURCES_REPORTED = 64;
/**
 * Milliseconds of frame handling per turn of the event loop, over every
 * connection, before the frames left wait for the next turn. A digest can
 * make gossipmonger answer with a megabyte of deltas (milliseconds to encode
 * and write), so a burst of them read at once stalled a node for seconds.
 */
const TURN_BUDGET = 20;

/** How long close() reads on from a sender that has not yet closed its side (ms). */
const CLOSE_GRACE = 1000;
/** Sources the admission table remembers at most (each a few dozen bytes). */
const SOURCES_TRACKED = 16384;
/** Proof attempts (membership) under way at once, every introducer together, at most. */
const MAX_PENDING_PROOFS = 256;

/**
 * TLS handshakes in progress (from more than one source) that make handshake
 * CPU contended: an eighth of maxConnections (32 by default), at least 2. A
 * handshake costs a few ms of CPU, so 32 waiting is a queue of 100 ms or more.
 */
export function handshakeBacklogOf (maxConnections: number): number {
  return Math.max(2, Math.ceil(maxConnections / 8));
}

/** What the server needs from the transport that owns it. */
export interface ServerContext {
  readonly options: ResolvedOptions;
  readonly factory: SocketFactory;
  readonly identity: IdentityPolicy;
  /** Counts and emits one error. */
  report (error: Error): void;
  /** A valid, authorized message: emit it. */
  deliver (message: Message, info: EventInfo): void;
  /** True past `tls.plaintext.until`. */
  pastPlaintextDeadline (): boolean;
  /** An inbound link is bound to remote `key`: frames for it may go over `link`. */
  bindLink (key: string, link: PeerLink): void;
  /** Begin a proof attempt of `id` at host:port (a probe); false when it cannot be sent yet. */
  probe (id: string, host: string, port: number): boolean;
  /** The address this node advertises. */
  ownAddress (): { host: string; port: number };
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

/**
 * Milliseconds that only move forward (Date.now()'s scale): deadlines and
 * token buckets must not stall, or drain, when the wall clock is stepped back.
 */
function monotonicNow (): number {
  return performance.timeOrigin + performance.now();
}

export class InboundServer implements ConnectionHost {
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

  readonly options: ResolvedOptions;
  readonly factory: SocketFactory;
  readonly identity: IdentityPolicy;
  /** The coarse clock: `monotonicNow()` as of the last sweep or accept. */
  now = monotonicNow();

  readonly #connections = new Set<Connection>();
  /** The read side of our own dialled links (not admitted, not counted in `size`). */
  readonly #outbound = new Set<Connection>();
  /** Inbound TLS handshakes in progress (see maxHandshakes). */
  #handshaking = 0;
  /** Connections waiting for a handshake slot, oldest first, with when they started waiting. */
  readonly #waiting = new Map<Connection, number>();
  /** Connections holding a handshake slot. */
  readonly #slots = new WeakSet<Connection>();
  /** Connections admitted and not yet open (in their handshake, or waiting for their first byte). */
  readonly #pending = new Set<Connection>();
  /** TLS mode: the raw socket a TLS socket wraps -> its connection. */
  readonly #byRaw = new WeakMap<Socket, Connection>();
  readonly #plaintextPeers = new Set<string>();
  #closing = false;
  readonly #admission: Admission;
  readonly #refusalLog = new RefusalLog(REFUSAL_REPORT_INTERVAL, REFUSAL_SOURCES_REPORTED);
  readonly #peerLog = new RefusalLog(REFUSAL_REPORT_INTERVAL, REFUSAL_SOURCES_REPORTED);
  readonly #peers: PeerLedger;
  /** Which ids may reach gossipmonger: proofs, held-back ids, proof attempts (inbound/membership.ts). */
  readonly membership: Membership;
  #sweeper: NodeJS.Timeout | undefined;
  /** When this turn's frame handling began (performance.now()), or undefined before the first frame of a turn. */
  #turnStarted: number | undefined;
  readonly #endTurn = (): void => { this.#turnStarted = undefined; };

  constructor (private readonly ctx: ServerContext) {
    const options = this.options = ctx.options;
    this.factory = ctx.factory;
    this.identity = ctx.identity;
    this.#admission = new Admission({
      maxPerSource: options.maxConnectionsPerSource,
      ratePerSource: options.connectionsPerSecondPerSource,
      maxSources: SOURCES_TRACKED,
      maxConnections: options.maxConnections,
      // Handshakes are what a TLS connection costs before it can prove anything;
      // a plain one costs an accept and a read, so only the slots are contended there.
      handshakeBacklog: ctx.factory.secure ? handshakeBacklogOf(options.maxConnections) : undefined
    });
    this.#peers = new PeerLedger(options.maxPeers, options.maxFrameSize / 2);
    this.membership = new Membership({
      ...options.membership,
      // Proof attempts under way at once: at most half of the outbound slots.
      maxPending: Math.max(1, Math.min(MAX_PENDING_PROOFS, Math.floor(options.outbound.maxConnections / 2)))
    }, this.#peers, { probe: (id, host, port) => ctx.probe(id, host, port), ownAddress: () => ctx.ownAddress() }, monotonicNow);
  }

  /** Distinct peer ids passed on so far (see maxPeers). */
  get peerCount (): number {
    return this.#peers.size;
  }

  /** Inbound connections held now, TLS handshakes in progress included. */
  get size (): number {
    return this.#connections.size;
  }

  /** Distinct sender ids seen in plaintext (bounded). */
  get plaintextPeerCount (): number {
    return this.#plaintextPeers.size;
  }

  /** Creates the server and binds it; `onListening` runs once it is up. */
  listen (host: string, port: number, onError: (error: Error) => void, onListening: (address: AddressInfo) => void): Server {
    const { factory, options } = this;
    this.#closing = false;
    const server = factory.createServer((socket) => this.#onConnection(socket));
    if (factory.secure) {
      factory.createTlsServer(options.handshakeTimeout, {
        secure: (socket) => this.#onSecure(socket),
        clientError: (error, socket) => this.#onTlsClientError(error, socket)
      });
    }
    this.server = server;
    server.on('error', onError);
    server.on('listening', () => onListening(server.address() as AddressInfo));
    server.listen(port, host);
    this.#startSweeper();
    return server;
  }

  /**
   * One timer for every deadline of every connection. It ticks at a quarter
   * of the shortest timeout (10 ms to 1 s), so a deadline is enforced within
   * 25% (at most 1 s) of its value.
   */
  #startSweeper (): void {
    const { idleTimeout, handshakeTimeout, frameTimeout } = this.options;
    const tick = Math.min(1000, Math.max(10, Math.floor(Math.min(idleTimeout, handshakeTimeout, frameTimeout) / 4)));
    this.#sweeper = setInterval(() => this.#sweep(), tick);
    this.#sweeper.unref();
  }

  #sweep (): void {
    const now = this.now = monotonicNow();
    const { idleTimeout, handshakeTimeout, frameTimeout } = this.options;
    // Until it has delivered a frame, a connection has shown no use that
    // would earn it the long idleTimeout: it gets no more than frameTimeout.
    const unproven = Math.min(idleTimeout, frameTimeout);
    for (const conn of this.#connections) {
      // Whichever deadline passed first decides the error.
      const startDue = conn.state === 'open' ? Infinity : conn.acceptedAt + handshakeTimeout;
      const frameDue = conn.frameStarted === 0 ? Infinity : conn.frameStarted + frameTimeout;
      const idle = conn.framesDelivered > 0 ? idleTimeout : unproven;
      const idleDue = conn.lastActive + idle;
      const due = Math.min(startDue, frameDue, idleDue);
      if (due > now) continue;
      const remote = conn.remote;
      conn.fail(due === startDue
        ? new HandshakeTimeoutError(handshakeTimeout, remote, conn.info !== undefined)
        : due === frameDue ? new FrameTimeoutError(frameTimeout, remote) : new IdleTimeoutError(idle, remote));
    }
    // Our own dialled links: a frame begun must end; the pool owns the rest of their life.
    for (const conn of this.#outbound) {
      if (conn.frameStarted !== 0 && conn.frameStarted + frameTimeout <= now) conn.fail(new FrameTimeoutError(frameTimeout, conn.remote));
    }
    // A handshake slot waited for too long: start anyway (see maxHandshakes).
    const patience = handshakeTimeout / 4;
    for (const [conn, since] of this.#waiting) {
      if (since + patience > now) break;
      this.#waiting.delete(conn);
      this.#upgrade(conn);
    }
    this.#admission.sweep(now);
    this.membership.sweep();
    for (const r of this.#refusalLog.flush(now)) this.ctx.report(new ConnectionsRefusedError(r.source, r.count, r.reasons));
    for (const r of this.#peerLog.flush(now)) this.ctx.report(new PeerLimitError(r.source, r.count, this.#peers.maxPeers));
  }

  /** Stops accepting and closes every inbound connection; `callback` once the server has closed. */
  close (callback: () => void): void {
    this.#closing = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    const server = this.server;
    this.server = null;
    // Each sender is asked to stop and what it already sent is still read
    // (Connection.finish), so that a clean stop costs the others no error.
    for (const conn of [...this.#connections]) conn.finish(CLOSE_GRACE);
    if (server) server.close(() => callback());
    else process.nextTick(callback);
  }

  #refuse (raw: Socket, source: string, reason: string): void {
    this.stats.refused++;
    raw.destroy();
    this.#noteRefusal(raw.remoteAddress, raw.remotePort, source, reason);
  }

  /** Counts a refused or evicted connection, and reports it (aggregated per source). */
  #noteRefusal (remoteAddress: string | undefined, remotePort: number | undefined, source: string, reason: string): void {
    this.stats.refusals[reason] = (this.stats.refusals[reason] ?? 0) + 1;
    if (channels.inboundRefused.hasSubscribers) channels.inboundRefused.publish({ remoteAddress, remotePort, reason });
    if (reason === 'closing') return;
    const report = this.#refusalLog.note(source, reason, this.now);
    if (report !== undefined) this.ctx.report(new ConnectionsRefusedError(report.source, report.count, report.reasons, { remoteAddress, remotePort }));
  }

  // ------------------------------------------------------------ admission

  #onConnection (raw: Socket): void {
    const now = this.now = monotonicNow();
    const source = sourceOf(raw.remoteAddress);
    if (this.#closing) {
      this.#refuse(raw, source, 'closing');
      return;
    }
    // Source networks first: a source outside allowFrom costs an accept and a
    // close, never a handshake, a buffer or a share of the per-source budgets.
    const allowFrom = this.options.allowFrom;
    if (allowFrom !== undefined && (raw.remoteAddress === undefined || !allowFrom.allows(raw.remoteAddress))) {
      this.#refuse(raw, source, 'not-allowed');
      return;
    }
    // Per-source limits next, so a refused connection costs no eviction.
    const refusal = this.#admission.admit(source, now);
    if (refusal !== undefined) {
      this.#refuse(raw, source, refusal);
      return;
    }
    if (this.#connections.size >= this.options.maxConnections && !this.#evictOne()) {
      this.#admission.release(source, true);
      this.#refuse(raw, source, 'max-connections');
      return;
    }
    this.stats.accepted++;
    const conn = new Connection(this, raw, source, now);
    this.#connections.add(conn);
    this.#pending.add(conn);
    if (channels.inboundAccepted.hasSubscribers) channels.inboundAccepted.publish(conn.remote);
    if (this.factory.secure) this.#byRaw.set(raw, conn);
    conn.start();
  }

  /**
   * Makes room at the cap: closes what has proven least (admission.ts,
   * chooseVictim): a connection that delivered nothing before one that
   * delivered frames, of the source (IPv6: the allocation) holding the most,
   * so no source can keep others out by holding slots, whether idle, dripping
   * a frame, or spread over many addresses.
   */
  #evictOne (): boolean {
    const victim = chooseVictim(this.#connections);
    if (victim === undefined) return false;
    this.stats.evicted++;
    victim.drop();
    this.#noteRefusal(victim.remoteAddress, victim.remotePort, victim.source, 'evicted');
    return true;
  }

  // ------------------------------------------------------------ TLS

  /** A ClientHello arrived: start its handshake now if a slot is free, else queue it. */
  startHandshake (conn: Connection): void {
    if (this.#handshaking < this.options.maxHandshakes && this.#waiting.size === 0) this.#upgrade(conn);
    else this.#waiting.set(conn, this.now);
  }

  #upgrade (conn: Connection): void {
    if (conn.closed) return;
    this.#slots.add(conn);
    this.#handshaking++;
    conn.state = 'handshake';
    // tls.Server feeds bytes already buffered on the socket to OpenSSL.
    this.factory.upgrade(conn.raw);
  }

  /** A handshake finished or its connection closed: its slot goes to the next one waiting. */
  #handshakeOver (conn: Connection): void {
    this.#waiting.delete(conn);
    if (!this.#slots.delete(conn)) return;
    this.#handshaking--;
    for (const next of this.#waiting.keys()) {
      if (this.#handshaking >= this.options.maxHandshakes) break;
      this.#waiting.delete(next);
      this.#upgrade(next);
    }
  }

  /** Inbound TLS handshakes in progress, and connections waiting to start theirs. */
  get handshakes (): { inProgress: number; waiting: number } {
    return { inProgress: this.#handshaking, waiting: this.#waiting.size };
  }

  /** `tls.Server` wraps our raw socket; Node keeps the wrapped one as `_parent`. */
  #connectionOf (socket: TLSSocket): Connection | undefined {
    const parent = (socket as TLSSocket & { _parent?: Socket })._parent;
    return parent === undefined ? undefined : this.#byRaw.get(parent);
  }

  #onSecure (socket: TLSSocket): void {
    const conn = this.#connectionOf(socket);
    // A closed one is already being reset by drop().
    if (conn === undefined) {
      socket.destroy();
      return;
    }
    this.#handshakeOver(conn);
    conn.secured(socket);
  }

  #onTlsClientError (error: NodeJS.ErrnoException, socket: TLSSocket): void {
    // With a 'tlsClientError' listener, Node leaves the socket open: close it
    // (ours through fail(), which resets a connection whose handshake did not finish).
    // A closed one is already being reset by drop(); destroying it here would end it first.
    const conn = this.#connectionOf(socket);
    if (conn === undefined) socket.destroy();
    if (conn?.closed) return;
    const remote = conn ? conn.remote : { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
    const factory = this.factory;
    const failure = error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
      ? new HandshakeTimeoutError(this.options.handshakeTimeout, { ...remote, cause: error })
      : factory.isClusterRefusal(error)
        ? new ClusterMismatchError(factory.clusterLabel, false, { ...remote, cause: error })
        : new TlsHandshakeError(socket.authorizationError?.toString() ?? error.code ?? error.message, { ...remote, cause: error });
    if (conn) conn.fail(failure);
    else this.ctx.report(failure);
  }

  // ------------------------------------------------------------ ConnectionHost

  turnSpent (): boolean {
    const now = performance.now();
    if (this.#turnStarted === undefined) {
      this.#turnStarted = now;
      setImmediate(this.#endTurn);
      return false;
    }
    return now - this.#turnStarted > TURN_BUDGET;
  }

  countBytes (bytes: number): void {
    this.stats.bytesIn += bytes;
  }

  notePlaintextConnection (): void {
    this.stats.plaintextConnections++;
    this.stats.plaintextLastSeen = Date.now();
  }

  pastPlaintextDeadline (): boolean {
    return this.ctx.pastPlaintextDeadline();
  }

  report (error: Error): void {
    this.ctx.report(error);
  }

  /** A frame that passed the connection's checks: membership, the peer budget, then the event. */
  accept (conn: Connection, message: Message): void {
    if (conn.plaintext) this.#notePlaintextPeer(message.sender.id);
    const admitted = this.membership.admit(message, this.#originOf(conn, message.sender.id));
    if (admitted.message === undefined) return;
    const verdict = this.#peers.admit(admitted.message);
    if (verdict.dropped > 0) this.#notePeersDropped(conn, verdict.dropped);
    if (verdict.message === undefined) return;
    this.stats.framesIn++;
    conn.framesDelivered++;
    this.ctx.deliver(verdict.message, conn.info!);
  }

  opened (conn: Connection): void {
    if (this.#pending.delete(conn)) this.#admission.opened(conn.source);
  }

  /**
   * What the frame's connection proves of its sender. Under a policy that
   * binds ids (and over TLS), the frame passed it, so its certificate proves
   * the sender; the sender id introduces what the message names. Otherwise
   * the connection proves its first sender by contact, and its source
   * address introduces.
   */
  #originOf (conn: Connection, senderId: string): Origin {
    if (!conn.plaintext && this.identity.provesIds) return { proof: 'certificate', introducer: `id:${senderId}` };
    conn.speaksFor ??= senderId;
    return { proof: conn.speaksFor === senderId ? 'contact' : undefined, introducer: `source:${conn.source}` };
  }

  closed (conn: Connection): void {
    if (conn.outbound !== undefined) {
      this.#outbound.delete(conn);
      return;
    }
    this.#handshakeOver(conn);
    if (!this.#connections.delete(conn)) return;
    this.#admission.release(conn.source, this.#pending.delete(conn));
    if (channels.inboundClosed.hasSubscribers) channels.inboundClosed.publish({ ...conn.remote, error: conn.error });
  }

  /**
   * The first frame of an inbound link passed its checks: if the connection
   * proves the remote the sender advertises (IdentityPolicy.linkKey), it is
   * bound to it, and the transport's pool may write frames on it.
   */
  bindLink (conn: Connection, sender: Sender): void {
    const socket = conn.socket as TLSSocket;
    const key = this.identity.linkKey(sender, conn.clientCertificate(), socket.authorized, (certificate, host) => this.factory.namesHost(certificate, host));
    if (key === undefined) return;
    conn.linkKey = key;
    this.ctx.bindLink(key, { socket, rank: linkRank(socket), touch: () => conn.touch() });
  }

  /**
   * Reads the frames the server sends back on our own dialled link: the
   * same decoder, validation, identity check (against the server's
   * certificate), peer budget and frame deadline as inbound connections.
   */
  readOutbound (socket: TLSSocket, certificate: PeerCertificate | undefined, remote: { remoteAddress: string; remotePort: number; peerId: string | undefined }, onFrame: () => void): void {
    this.#outbound.add(Connection.outbound(this, socket, certificate, remote, onFrame));
  }

  /** Peer entries dropped by the maxPeers budget: counted, and reported aggregated per source. */
  #notePeersDropped (conn: Connection, dropped: number): void {
    this.stats.peersDropped += dropped;
    const report = this.#peerLog.note(conn.source, 'max-peers', this.now, dropped);
    if (report !== undefined) this.ctx.report(new PeerLimitError(report.source, report.count, this.#peers.maxPeers, conn.remote));
  }

  #notePlaintextPeer (id: string): void {
    this.stats.plaintextLastSeen = Date.now();
    if (this.#plaintextPeers.size < PLAINTEXT_PEERS_TRACKED) this.#plaintextPeers.add(id);
  }

  // ------------------------------------------------------------ rotation and deadlines

  /**
   * After a rotation: every open TLS connection whose client certificate no
   * longer verifies (new CA, CRL, or policy) is closed and reported once.
   * Handshakes still in progress are checked when they finish (secured()).
   * Returns how many were closed.
   */
  recheck (): number {
    let closed = 0;
    const generation = this.factory.generation;
    for (const conn of [...this.#connections]) {
      if (conn.closed || conn.plaintext || conn.info === undefined || !conn.info.secure) continue;
      const problem = conn.untrusted();
      if (problem === undefined) {
        conn.generation = generation;
        continue;
      }
      closed++;
      conn.fail(new PeerUntrustedError(problem, subjectOf(conn.certificate), conn.remote));
    }
    return closed;
  }

  /** `tls.plaintext.until` has passed: every plaintext connection is closed with ERR_PLAINTEXT_REFUSED. */
  cutPlaintext (): void {
    for (const conn of [...this.#connections]) {
      if (conn.plaintext && !conn.closed) conn.fail(new PlaintextRefusedError(conn.remote, true));
    }
  }
}
