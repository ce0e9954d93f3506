/**
 * keepAlive: one outbound connection per remote, many frames on it. A remote is
 * a `host:port`, and under an authorize policy other than 'any' also the peer
 * id the server must prove: two ids at one address never share a connection.
 *
 * - Frames sent before the connection is accepted wait in a queue, in order.
 * - Queued bytes plus what the socket still buffers are bounded per remote;
 *   a frame that does not fit is refused with ERR_BACKPRESSURE.
 * - The queue is drained in batches under cork/uncork, yielding to the event
 *   loop between batches (a synchronous drain loop can freeze it for seconds
 *   on TLS) and waiting for 'drain' when the socket says so.
 * - A connection that breaks is replaced for the frames still queued; frames
 *   already handed to the socket and not yet flushed are reported lost.
 * - A connection that the TLS server refuses reports how many queued frames
 *   it drops (none was written before acceptance, see dial.ts).
 * - Remotes are capped (`outbound.maxPooledRemotes`): at the cap a remote
 *   whose connection never opened (a tarpit) gives its place up, else the
 *   least recently used idle one is retired, else the frame is refused.
 * - Every byte queued or not yet flushed is also charged to the transport's
 *   one outbound memory budget (`outbound.maxQueuedBytes`, gate.ts): past it
 *   queues give way (`shed`), never-opened remotes first, then the remote
 *   holding the most, else the frame is refused.
 * - A socket let go of (idle, rotation, eviction) is ended and must close
 *   within `closeTimeout`, else it is destroyed; at most `maxRemotes` wait.
 * - TLS dials wait for a handshake slot (handshakes.ts).
 *
 * Links (tls/link.ts): a remote writes to its own dialled connection, or to
 * a link the peer dialled and the inbound server bound to the remote's key
 * (`adoptLink`), whichever exists; when both do (both peers dialled at once)
 * it keeps the one of lower rank, as the peer does, and ends its own if that
 * loses, after what it was already handed. Frames still queued go to the
 * survivor. Our own dialled link is read by the inbound server (`readLink`).
 */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { IdentityPolicy } from '../tls/identity';
import { linkRank, type PeerLink } from '../tls/link';
import { subjectOf } from '../tls/trust';
import { BackpressureError, CloseTimeoutError, ConnectionLostError, OutboundLimitError, PeerUntrustedError, ProtocolMismatchError, withFrames, withRemote, type RemoteInfo } from '../errors';
import { looksLikeTls, plaintextToTls } from '../wire/protocol-sniff';
import type { OutboundCounters } from './counters';
import { dial, type Dialing } from './dial';
import { Fifo } from './fifo';
import { destinationOf } from '../net/addresses';
import { frameCharge, type Lease, type MemoryBudget, type OutboundGate } from './gate';
import type { HandshakeSlots } from './handshakes';
import type { AnySocket, SocketFactory } from '../tls/socket-factory';

/**
 * Frames handed to one connection, how many of those it has flushed, and the
 * bytes it still holds. Frames are strings (Node encodes them as it writes:
 * a Buffer per frame cost a copy and an allocation outside the heap), so the
 * socket's own writableLength counts UTF-16 units; the bytes are counted
 * here (see `charge`), and the write callbacks, called in order, give them back.
 */
interface FrameCount {
  written: number;
  flushed: number;
  /** Bytes charged for the frames written and not yet flushed. */
  unflushedBytes: number;
  /** Their charges, oldest first. */
  charges: Fifo<number>;
  /** The socket has closed and what it held went back to the memory budget: later callbacks give nothing. */
  settled: boolean;
}

/** What a frame counts against maxQueuedBytes (both budgets): see gate.ts. */
const charge = frameCharge;

function newCount (): FrameCount {
  return { written: 0, flushed: 0, unflushedBytes: 0, charges: new Fifo(), settled: false };
}

/** The socket of `counts` has closed: what it had not flushed leaves the memory budget. */
function settle (counts: FrameCount, memory: MemoryBudget): void {
  if (counts.settled) return;
  counts.settled = true;
  if (counts.unflushedBytes > 0) memory.give(counts.unflushedBytes);
}

/** Frames written per batch before yielding. */
const BATCH_FRAMES = 256;
/** Frames smaller than this are corked with the others of the same tick. */
const CORK_BELOW = 16 * 1024;
/** How long close() waits for queued frames to flush. */
const CLOSE_FLUSH_TIMEOUT = 1000;

export interface PoolContext {
  readonly factory: SocketFactory;
  readonly connectTimeout: number;
  readonly idleTimeout: number;
  readonly maxQueuedBytes: number;
  readonly maxRemotes: number;
  /** How long a socket we ended may take to close before it is destroyed. */
  readonly closeTimeout: number;
  readonly gate: OutboundGate;
  /** The bound on TLS handshakes in progress, shared with per-message sends. */
  readonly handshakes: HandshakeSlots;
  /** Checks the server of a new connection for its peer id; peer ids are part of a remote's key when it is per peer. */
  readonly identity: IdentityPolicy;
  /** TLS or plaintext for a new connection (plaintext only during a migration). */
  secure (): boolean;
  readonly counters: OutboundCounters;
  report (error: Error): void;
  /**
   * Our own dialled connection was negotiated as a link: have the frames the
   * server sends on it read (inbound checks, against its certificate);
   * `onFrame` on each one delivered.
   */
  readLink (socket: TLSSocket, certificate: PeerCertificate | undefined, remote: { remoteAddress: string; remotePort: number; peerId: string | undefined }, onFrame: () => void): void;
  /** A connection to `host:port` was accepted (an outage of it is over). */
  reached (host: string, port: number): void;
}

/** One connection a remote writes to: its own dialled one, or a link the peer dialled. */
interface Target {
  readonly socket: AnySocket;
  /** Frames handed to it, and how many it has flushed. */
  readonly counts: FrameCount;
  readonly onFlushed: (error?: Error | null) => void;
  /** Its rank when it is a link (tls/link.ts); undefined for a connection that carries one direction. */
  readonly rank: string | undefined;
  /** The inbound link it is, when the peer dialled it (the inbound server owns it). */
  readonly link: PeerLink | undefined;
  /** The socket's error, if it failed. */
  failure: Error | undefined;
  /** Let go of: its close is reported by whoever took it over (the pool's tracking), not by the remote. */
  retired: boolean;
  /** The remote ended its side: nothing more is written to it (what was is still read by the remote). */
  ended: boolean;
}

export class Remote {
  /** The connection frames are written to now, if any. */
  private current: Target | undefined;
  /** Our own dialled connection, once accepted. */
  private own: Target | undefined;
  /** A link the peer dialled, bound to this remote's key. */
  private link: Target | undefined;
  /** A dial in progress: waiting for the gate or a handshake slot, or opening. */
  private connecting = false;
  /** A dial waiting for a handshake slot: how to cancel it, and the outbound slot it holds meanwhile. */
  private waiting: { cancel: () => boolean; lease: Lease } | undefined;
  /** The connection being opened, while `connecting` and a socket exists. */
  private dialing: Dialing | undefined;
  /** Frames not yet handed to the socket, and their UTF-8 sizes. `queuedBytes` is their charge. */
  private frames = new Fifo<string>();
  private sizes = new Fifo<number>();
  queuedBytes = 0;
  /** The socket corked in this tick, if any (the connection may change before it is uncorked). */
  private corked: AnySocket | undefined;
  private scheduled = false;
  lastUsed = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  closing = false;
  /** The gossipmonger id of the peer last sent to at this address, for errors. */
  peerId: string | undefined;
  /** A connection to it was accepted once, or the peer dialled a link bound to it: it is no tarpit (see gate.ts, fair share). */
  accepted = false;
  /** When its current dial started (performance.now()). */
  dialStarted = 0;

  /**
   * `expectedId`: under an authorize policy, the peer id the server must prove
   * (part of the remote's key); undefined under 'any'.
   */
  constructor (readonly pool: ConnectionPool, readonly key: string, readonly expectedId: string | undefined, readonly host: string, readonly port: number) {
    this.peerId = expectedId;
  }

  /** 'open' while frames have a connection to go to; 'dialing' while one is being opened. */
  get state (): 'idle' | 'dialing' | 'open' {
    return this.current !== undefined ? 'open' : this.connecting ? 'dialing' : 'idle';
  }

  /** The socket frames are written to now. */
  get socket (): AnySocket | undefined {
    return this.current?.socket;
  }

  /** Our own dialled connection, if open. */
  get ownSocket (): AnySocket | undefined {
    return this.own?.socket;
  }

  /** Whether frames go over a link the peer dialled. */
  get borrowed (): boolean {
    return this.current?.link !== undefined;
  }

  /** Address, port and peer id for errors about this remote. */
  get remote (): { remoteAddress: string; remotePort: number; peerId: string | undefined } {
    return { remoteAddress: this.host, remotePort: this.port, peerId: this.peerId };
  }

  get queued (): number {
    return this.frames.length;
  }

  /** `frame`: one line, terminator included; `size`: its UTF-8 length. */
  send (frame: string, size: number): void {
    const ctx = this.pool.ctx;
    // What the socket still holds. A write the kernel took at once leaves
    // writableLength (UTF-16 units, at most 3 bytes each) at once, and the
    // charged count only when its callback runs, a tick later.
    // A connection whose writing side is ended (its owner is closing it) takes no more.
    if (this.current?.socket.writableEnded === true) this.ended(this.current);
    const target = this.current;
    const buffered = target === undefined ? 0 : Math.min(target.counts.unflushedBytes, 3 * target.socket.writableLength);
    const cost = charge(frame, size);
    if (this.queuedBytes + buffered + cost > ctx.maxQueuedBytes) {
      ctx.report(new BackpressureError(this.queuedBytes + buffered, ctx.maxQueuedBytes, this.remote));
      this.forgetIfEmpty();
      return;
    }
    const memory = ctx.gate.memory;
    if (!memory.take(cost, this.queuedBytes + buffered, this.accepted)) {
      ctx.report(withFrames(new OutboundLimitError('maxQueuedBytes', memory.max, this.remote), { framesDropped: 1 }));
      this.forgetIfEmpty();
      return;
    }
    this.lastUsed = Date.now();
    if (target !== undefined && this.queued === 0 && !target.socket.writableNeedDrain) {
      this.write(target, frame, size, cost);
      return;
    }
    this.frames.push(frame);
    this.sizes.push(size);
    this.queuedBytes += cost;
    if (target === undefined && !this.connecting) this.connect();
  }

  /**
   * A write callback: the socket is done with its oldest frame. A write that
   * failed (the socket was ended or destroyed meanwhile: EPIPE,
   * ERR_STREAM_DESTROYED) did not flush its frame, and is not counted as if it
   * had: the frame is reported lost when the connection closes. Either way
   * its bytes leave the memory budget (unless its socket's close gave them back).
   */
  private flushedOne (target: Target, error?: Error | null): void {
    const counts = target.counts;
    const cost = counts.charges.shift()!;
    counts.unflushedBytes -= cost;
    if (!counts.settled) this.pool.ctx.gate.memory.give(cost);
    if (error) return;
    counts.flushed++;
    if (target === this.current && target === this.own && this.closing && this.queued === 0 && counts.flushed === counts.written) target.socket.end();
  }

  private readonly uncork = (): void => {
    const socket = this.corked;
    this.corked = undefined;
    socket?.uncork();
  };

  /** `size`: the frame's UTF-8 length; `cost`: its charge (see `charge`). */
  private write (target: Target, frame: string, size: number, cost: number): boolean {
    const socket = target.socket;
    // Small frames sent in one tick go out together: one TLS record, one
    // syscall (measured: +44% for 1 KB frames over plain TCP). A large frame is
    // a syscall's worth on its own, and corking it only adds a copy (measured:
    // -15% for 64 KB frames), so it is written straight away.
    if (this.corked === undefined && size < CORK_BELOW) {
      this.corked = socket;
      socket.cork();
      process.nextTick(this.uncork);
    }
    const counts = target.counts;
    counts.written++;
    counts.unflushedBytes += cost;
    counts.charges.push(cost);
    this.pool.ctx.counters.sent(size);
    target.link?.touch();
    return socket.write(frame, 'utf8', target.onFlushed);
  }

  /** Hands queued frames to the socket, a batch at a time. */
  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.current?.socket.writableEnded === true) this.ended(this.current);
    const target = this.current;
    if (target === undefined) return;
    const socket = target.socket;
    let n = 0;
    while (this.frames.length > 0 && n < BATCH_FRAMES) {
      const size = this.sizes.shift()!;
      const frame = this.frames.shift()!;
      const cost = charge(frame, size);
      this.queuedBytes -= cost;
      const ok = this.write(target, frame, size, cost);
      n++;
      if (!ok) break;
    }
    if (this.frames.length === 0) {
      if (this.closing && target === this.own && target.counts.flushed === target.counts.written) socket.end();
    } else if (!socket.writableNeedDrain && !this.scheduled) {
      // More to send and room for it: yield first, so one busy remote cannot
      // hold the event loop.
      this.scheduled = true;
      setImmediate(this.flush);
    }
  };

  /** A new connection to write to (either kind): its counts, and the listeners every kind needs. */
  private target (socket: AnySocket, rank: string | undefined, link: PeerLink | undefined): Target {
    const counts = newCount();
    const target: Target = { socket, counts, onFlushed: (error) => this.flushedOne(target, error), rank, link, failure: undefined, retired: false, ended: false };
    socket.on('error', (error) => { target.failure ??= error; });
    socket.on('drain', () => { if (this.current === target) this.flush(); });
    socket.once('end', () => this.ended(target));
    socket.once('close', () => this.closed(target));
    return target;
  }

  private connect (): void {
    const ctx = this.pool.ctx;
    this.connecting = true;
    this.dialStarted = performance.now();
    const secure = ctx.secure();
    ctx.gate.open(this.host, this.port, (refused, lease, address) => {
      if (refused !== undefined) {
        this.failed(withRemote(refused, { peerId: this.peerId }));
        return;
      }
      if (!this.stillWanted()) {
        lease!.release();
        return;
      }
      if (!secure || !ctx.factory.secure) {
        this.dial(lease!, address, secure, () => {});
        return;
      }
      const waiting = { cancel: (): boolean => false, lease: lease! };
      this.waiting = waiting;
      // At the outbound cap the gate may take this slot back for another
      // destination (fair share): the dial then never starts, and its frames are dropped.
      lease!.holder = { destroy: (error?: Error) => this.slotTaken(waiting, error) };
      waiting.cancel = ctx.handshakes.take((release) => {
        if (this.waiting === waiting) this.waiting = undefined;
        if (!this.stillWanted()) {
          release();
          lease!.release();
          return;
        }
        this.dial(lease!, address, secure, release);
      });
    });
  }

  /** The gate took back the outbound slot of a dial still waiting for a handshake slot. */
  private slotTaken (waiting: { cancel: () => boolean }, error: Error | undefined): void {
    if (this.waiting !== waiting || !waiting.cancel()) return;
    this.waiting = undefined;
    // The gate always says why (ERR_OUTBOUND_LIMIT, evicted).
    this.failed(withRemote(error!, this.remote));
  }

  /** Gives up a dial still waiting for a handshake slot (nothing was opened); false when there is none. */
  private cancelWaiting (): boolean {
    const waiting = this.waiting;
    if (waiting === undefined || !waiting.cancel()) return false;
    this.waiting = undefined;
    waiting.lease.release();
    this.connecting = false;
    return true;
  }

  /**
   * A dial about to start is still needed: not closed, nothing else to
   * write to (a link may have come meanwhile), and frames to send. When not,
   * the dial is given up and the remote forgotten if it holds nothing.
   */
  private stillWanted (): boolean {
    if (this.connecting && this.current === undefined && this.queued > 0) return true;
    this.connecting = false;
    this.forgetIfEmpty();
    return false;
  }

  private dial (lease: Lease, address: string | undefined, secure: boolean, releaseSlot: () => void): void {
    const ctx = this.pool.ctx;
    ctx.counters.opened++;
    const dialing = dial(ctx.factory, {
      host: this.host,
      port: this.port,
      ...(address === undefined ? {} : { address }),
      peerId: this.peerId,
      ...(this.expectedId === undefined ? {} : { expectedId: this.expectedId }),
      connectTimeout: ctx.connectTimeout,
      secure,
      persistent: true,
      pendingFrames: () => this.queued,
      checkServer: (certificate) => ctx.identity.checkServer(this.expectedId ?? this.peerId, this.host, this.port, this.queued, certificate)
    }, {
      accepted: (socket) => {
        releaseSlot();
        this.dialing = undefined;
        // Accepted: the destination is proven (a tarpit never gets here).
        lease.completed();
        this.open(socket, secure);
      },
      failed: (error) => {
        releaseSlot();
        this.dialing = undefined;
        this.failed(error);
      },
      rotated: () => {
        // Opened with material a rotation replaced: nothing was written, so
        // the queue simply waits for a connection made with the new material.
        releaseSlot();
        this.dialing = undefined;
        this.connecting = false;
        this.choose();
        if (this.current === undefined && this.queued > 0 && !this.closing) this.connect();
        else this.forgetIfEmpty();
      }
    });
    this.dialing = dialing;
    // At the outbound cap, the gate may give this slot to another destination: the socket goes.
    lease.holder = dialing.socket;
    dialing.socket.once('close', () => lease.release());
  }

  private failed (error: Error): void {
    this.connecting = false;
    // A link the peer dialled meanwhile takes the frames.
    this.choose();
    // Retrying a refused or unreachable remote in a loop would only burn CPU;
    // gossip tries again on its own schedule.
    const dropped = this.current === undefined ? this.queued : 0;
    if (this.current === undefined) this.dropQueue();
    this.pool.ctx.report(withFrames(error, { framesDropped: dropped }));
    this.forgetIfEmpty();
  }

  /** A rotation: a connection still being opened is abandoned and reopened with the new material. */
  abandonDial (): void {
    this.dialing?.abandon();
  }

  /** Its connection never opened and a dial is under way (not a name resolving, not waiting for a handshake slot): it may give way at the cap. */
  get neverOpened (): boolean {
    return !this.accepted && this.state === 'dialing' && this.dialing !== undefined;
  }

  /**
   * At the pool's cap: a remote whose connection never opened gives its place
   * up to another, its dial destroyed with `error` (its queued frames are
   * reported dropped).
   */
  giveWay (error: Error): void {
    this.dialing!.socket.destroy(error);
  }

  /**
   * The memory budget needs room: drops this remote's oldest queued frames
   * until `bytes` are freed, its queue is empty, or it holds no more than
   * `floor`; reports them (one error, with the count). Returns the bytes freed.
   */
  shed (bytes: number, floor: number, why: string): number {
    const memory = this.pool.ctx.gate.memory;
    let freed = 0;
    let dropped = 0;
    while (freed < bytes && this.frames.length > 0 && this.queuedBytes > floor) {
      const size = this.sizes.shift()!;
      const cost = charge(this.frames.shift()!, size);
      this.queuedBytes -= cost;
      memory.give(cost);
      freed += cost;
      dropped++;
    }
    if (dropped > 0) this.pool.ctx.report(withFrames(new OutboundLimitError('maxQueuedBytes', memory.max, this.remote, why), { framesDropped: dropped }));
    return freed;
  }

  /** Our dial was accepted. */
  private open (socket: AnySocket, secure: boolean): void {
    const ctx = this.pool.ctx;
    this.connecting = false;
    this.accepted = true;
    ctx.counters.accepted(socket);
    ctx.reached(this.host, this.port);
    const link = secure && ctx.factory.isLink(socket);
    const own = this.target(socket, link ? linkRank(socket as TLSSocket) : undefined, undefined);
    this.own = own;
    if (link) {
      ctx.readLink(socket as TLSSocket, ctx.factory.serverCertificate(socket as TLSSocket), this.remote, () => { this.lastUsed = Date.now(); });
    } else {
      // The server sends nothing on this connection; read and discard, so that
      // its FIN is seen. Bytes back on a plaintext connection are a TLS listener
      // refusing it.
      socket.on('data', (chunk: Buffer) => {
        if (own.failure === undefined && (socket as { encrypted?: boolean }).encrypted !== true && looksLikeTls(chunk)) {
          own.failure = plaintextToTls(this.remote);
          socket.destroy();
        }
      });
    }
    this.lastUsed = Date.now();
    this.armIdle();
    this.choose();
    // Accepted by a remote that had already ended (it accepted us, then began
    // closing: dial.ts): what was waiting is written, and nothing more.
    if (socket.readableEnded && this.own === own) this.ended(own);
  }

  /**
   * An inbound link the peer dialled is bound to this remote's key: frames
   * may go over it (now, or once our own connection loses to it).
   */
  adopt (link: PeerLink): void {
    if (this.closing || this.link?.socket === link.socket || link.socket.destroyed) return;
    const previous = this.link;
    // The peer dialled us and proved who it is: no tarpit.
    this.accepted = true;
    this.link = this.target(link.socket, link.rank, link);
    if (previous !== undefined) {
      // The peer dialled again: its earlier link is going away.
      previous.retired = true;
      this.pool.watch(previous.socket, previous.counts, this.remote, previous.failure);
      if (this.current === previous) this.current = undefined;
    }
    // A dial not started yet is not needed any more.
    this.cancelWaiting();
    this.choose();
  }

  /**
   * Which connection frames go to: the only one there is, or, when both our
   * own and the peer's link are open, the one of lower rank (the peer
   * decides alike). Our own is ended when it loses (we dialled it); the
   * peer's link is left to the peer.
   *
   * While our dial is in its handshake nothing is decided: the frames wait
   * for it, so that if it wins it carries them, and the peer, reading them,
   * binds it and lets its own go. For the same reason our own connection
   * can only win if it carries frames: one that carried none is never bound
   * by the peer, which would keep using its link and let ours idle out.
   */
  private choose (): void {
    if (this.dialing !== undefined) return;
    const own = this.own?.ended === true ? undefined : this.own;
    const link = this.link?.ended === true ? undefined : this.link;
    let best = own ?? link;
    if (own !== undefined && link !== undefined) {
      const carries = own.counts.written > 0 || this.queued > 0;
      best = carries && own.rank !== undefined && own.rank < link.rank! ? own : link;
    }
    if (this.own !== undefined && best !== this.own) this.retireOwn();
    if (best !== undefined && best !== this.current) {
      this.current = best;
      this.flush();
    }
  }

  private armIdle (delay = this.pool.ctx.idleTimeout): void {
    this.idleTimer = setTimeout(this.checkIdle, delay);
    this.idleTimer.unref();
  }

  /** Re-arms for the remaining time instead of resetting a timer per frame. */
  private readonly checkIdle = (): void => {
    this.idleTimer = undefined;
    const own = this.own;
    if (own === undefined) return;
    const idleFor = Date.now() - this.lastUsed;
    const timeout = this.pool.ctx.idleTimeout;
    if (idleFor >= timeout && this.queued === 0 && own.socket.writableLength === 0) {
      this.retireOwn();
      if (this.current === undefined && this.link !== undefined) this.choose();
      this.forgetIfEmpty();
    } else {
      this.armIdle(Math.max(1, timeout - idleFor));
    }
  };

  /** Lets go of our own connection without reporting: ended after what it was handed; the pool tracks its close. */
  private retireOwn (): void {
    const own = this.own;
    if (own === undefined) return;
    this.own = undefined;
    own.retired = true;
    if (this.current === own) this.current = undefined;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.pool.track(own.socket, own.counts, this.remote);
    own.socket.end();
  }

  /**
   * Lets go of whatever this remote writes to (idle at the cap, rotation):
   * our own connection is ended after what it was handed, a link is left to
   * its owner. Frames still queued go on a new connection.
   */
  letGo (): void {
    this.retireOwn();
    const link = this.link;
    if (link !== undefined) {
      this.link = undefined;
      link.retired = true;
      if (this.current === link) this.current = undefined;
      this.pool.watch(link.socket, link.counts, this.remote, link.failure);
    }
    if (this.queued > 0 && !this.closing && !this.connecting) this.connect();
    else this.forgetIfEmpty();
  }

  /** A rotation: our own connection ends after what it was handed; frames go to a link, or a new dial. */
  retireOwnConnection (): void {
    this.retireOwn();
    if (this.current === undefined) this.choose();
    if (this.current === undefined && this.queued > 0 && !this.closing && !this.connecting) this.connect();
    else this.forgetIfEmpty();
  }

  /** The remote holds nothing (no connection, no dial, no frame): the pool forgets it. */
  private forgetIfEmpty (): void {
    if (this.current === undefined && this.own === undefined && this.link === undefined && !this.connecting && this.queued === 0) this.pool.forget(this);
  }

  /**
   * The remote ended its side of a connection we write to (its idle
   * timeout, its close(), or it lets go of a link that lost to another): it
   * reads what we have already written until our end. Write no more on it:
   * later frames go on another connection; our own is let go of with its
   * counts, so a break is still reported (a link the peer dialled is the
   * inbound server's to close).
   */
  private ended (target: Target): void {
    target.ended = true;
    if (target.retired) return;
    if (target === this.own) {
      if (target.failure === undefined) this.retireOwn();
    } else if (this.current === target) {
      this.current = undefined;
    }
    if (this.current === undefined) this.choose();
    if (this.current === undefined && this.queued > 0 && !this.connecting && !this.closing) this.connect();
    else this.forgetIfEmpty();
  }

  private closed (target: Target): void {
    if (target.retired) return;
    settle(target.counts, this.pool.ctx.gate.memory);
    const { written, flushed } = target.counts;
    const lost = written - flushed;
    const wasCurrent = this.current === target;
    if (this.own === target) {
      this.own = undefined;
      if (this.idleTimer) clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    if (this.link === target) this.link = undefined;
    if (wasCurrent) this.current = undefined;
    // Closing, the frames still queued go nowhere: they are counted as dropped.
    const dropped = this.closing && wasCurrent && this.own === undefined && this.link === undefined ? this.queued : 0;
    const failure = target.failure;
    if (failure instanceof ProtocolMismatchError) {
      // A TLS listener refused the plaintext connection: every frame on it is lost.
      this.pool.ctx.report(withFrames(failure, { framesWritten: written, framesLost: written, framesDropped: dropped }));
    } else if (lost > 0 || dropped > 0 || (failure !== undefined && target.link === undefined)) {
      // A link's own failure is reported by the inbound server; here only what it cost our frames.
      this.pool.ctx.report(withFrames(new ConnectionLostError(lost, written, { ...this.remote, cause: failure }), { framesDropped: dropped }));
    }
    if (this.closing) {
      if (dropped > 0) this.dropQueue();
      this.forgetIfEmpty();
      return;
    }
    if (this.current === undefined) this.choose();
    if (this.current === undefined && this.queued > 0 && !this.connecting) this.connect();
    else this.forgetIfEmpty();
  }

  private dropQueue (): void {
    this.frames.clear();
    this.sizes.clear();
    this.pool.ctx.gate.memory.give(this.queuedBytes);
    this.queuedBytes = 0;
  }

  /** Flush what is queued, then end; resolves through the pool's close tracking. */
  close (): void {
    this.closing = true;
    if (this.cancelWaiting() && this.current === undefined && this.queued > 0) {
      // Never dialled: nothing will flush them.
      const dropped = this.queued;
      this.dropQueue();
      this.pool.ctx.report(withFrames(new CloseTimeoutError(`close(): ${dropped} queued frame(s) waiting for a TLS handshake slot were dropped`, this.remote), { framesDropped: dropped }));
    }
    const own = this.own;
    if (own !== undefined && this.current === own && this.queued === 0 && own.counts.flushed === own.counts.written) own.socket.end();
    if (this.current !== undefined && this.current === this.link && this.queued === 0) {
      // A link is the inbound server's to close; this remote only stops writing to it.
      this.letGo();
    }
    this.forgetIfEmpty();
  }

  destroy (): void {
    const dropped = this.queued;
    this.dropQueue();
    if (dropped > 0) {
      this.pool.ctx.report(withFrames(new CloseTimeoutError(`close(): ${dropped} queued frame(s) not flushed in time were dropped`, this.remote), { framesDropped: dropped }));
    }
    this.cancelWaiting();
    // With an error, so that the frames it still held are reported lost (closed()).
    this.own?.socket.destroy(new CloseTimeoutError('close(): the connection did not flush in time; destroyed', this.remote));
    this.dialing?.socket.destroy();
    if (this.link !== undefined) this.letGo();
    // Let go of while closing with frames queued, it may hold no socket, so no
    // close would forget it: close() would wait forever.
    this.forgetIfEmpty();
  }
}

export class ConnectionPool {
  private readonly remotes = new Map<string, Remote>();
  /** Open inbound links by the remote key they are bound to. */
  private readonly links = new Map<string, PeerLink>();
  private closing = false;
  /** Sockets let go of (rotation, idle, eviction) that have not closed yet, with their close timers. */
  private readonly retiring = new Map<AnySocket, NodeJS.Timeout>();
  private closeCallbacks: Array<() => void> = [];

  constructor (readonly ctx: PoolContext) {
    ctx.gate.memory.reclaim = (bytes, held, proven) => this.shed(bytes, held, proven);
  }

  /** `frame`: one line, terminator included; `size`: its UTF-8 length. */
  send (peerId: string | undefined, host: string, port: number, frame: string, size: number): void {
    const key = this.ctx.identity.remoteKey(peerId, host, port);
    let remote = this.remotes.get(key);
    if (remote === undefined) {
      remote = this.add(key, peerId, host, port);
      if (remote === undefined) {
        this.ctx.report(withFrames(new OutboundLimitError('maxPooledRemotes', this.ctx.maxRemotes, { remoteAddress: host, remotePort: port, peerId }), { framesDropped: 1 }));
        return;
      }
      const link = this.links.get(key);
      if (link !== undefined) remote.adopt(link);
    }
    remote.peerId = peerId;
    remote.send(frame, size);
  }

  /** A new remote, unless the cap is reached and no idle one can make room. */
  private add (key: string, peerId: string | undefined, host: string, port: number): Remote | undefined {
    if (this.remotes.size >= this.ctx.maxRemotes && !this.makeRoom(host, port)) return undefined;
    const remote = new Remote(this, key, this.ctx.identity.perPeer ? peerId : undefined, host, port);
    this.remotes.set(key, remote);
    return remote;
  }

  /**
   * An inbound link is bound to remote `key` (tls/link.ts): the remote
   * writes to it, or keeps it for when it has frames. Remembered while open,
   * so that a remote created later finds it; never counted as a pooled remote
   * until there is something to send.
   */
  adoptLink (key: string, link: PeerLink): void {
    if (this.closing || link.socket.destroyed) return;
    const previous = this.links.get(key);
    this.links.set(key, link);
    if (previous === undefined || previous.socket !== link.socket) {
      link.socket.once('close', () => {
        if (this.links.get(key) === link) this.links.delete(key);
      });
    }
    this.remotes.get(key)?.adopt(link);
  }

  /**
   * At the cap, room for a remote at `host:port`. A remote whose connection
   * never opened (a tarpit, or a peer that is down) gives its place up: the
   * oldest such dial is destroyed and its queued frames reported. To a
   * destination whose last exchange completed (gate.ts: proven) at once; to
   * any other only once that dial has lasted half of connectTimeout (a
   * stranger replacing a stranger gains nothing, and each replacement costs
   * a dial). Else, the least recently used idle remote is retired, unless
   * the newcomer is a stranger and dials are still under way (a flood of
   * strangers must not push out a working connection). False: no room.
   */
  private makeRoom (host: string, port: number): boolean {
    const proven = this.ctx.gate.isProven(`${destinationOf(host)}:${port}`);
    const staleBefore = performance.now() - this.ctx.connectTimeout / 2;
    let dialing = false;
    for (const remote of this.remotes.values()) {
      if (!remote.neverOpened) continue;
      dialing = true;
      if (!proven && remote.dialStarted > staleBefore) continue;
      // Its slot is free now; its dial reports the frames it drops as it fails.
      this.remotes.delete(remote.key);
      remote.giveWay(new OutboundLimitError('maxPooledRemotes', this.ctx.maxRemotes, remote.remote, 'never completed a connection'));
      return true;
    }
    if (dialing && !proven) return false;
    return this.evictIdle();
  }

  /**
   * The outbound memory budget is short of `bytes` for a frame whose remote
   * would then hold `held` (see MemoryBudget.reclaim): queues of remotes
   * whose connection never opened give way first (whatever they hold when
   * the requester is `proven`, else only while they hold more), then the
   * remotes holding the most, while they hold more than `held`.
   */
  private shed (bytes: number, held: number, proven: boolean): void {
    let needed = bytes;
    for (const remote of this.remotes.values()) {
      if (needed <= 0) return;
      if (remote.accepted || remote.queuedBytes === 0) continue;
      needed -= remote.shed(needed, proven ? 0 : held, 'never completed a connection');
    }
    const holders = [...this.remotes.values()].filter((r) => r.accepted && r.queuedBytes > held).sort((a, b) => b.queuedBytes - a.queuedBytes);
    for (const remote of holders) {
      if (needed <= 0) return;
      needed -= remote.shed(needed, held, 'held the most');
    }
  }

  /** Retires the least recently used open remote with nothing queued; false when there is none. */
  private evictIdle (): boolean {
    let victim: Remote | undefined;
    for (const remote of this.remotes.values()) {
      if (remote.state !== 'open' || remote.queued > 0 || remote.socket!.writableLength > 0) continue;
      if (victim === undefined || remote.lastUsed < victim.lastUsed) victim = remote;
    }
    if (victim === undefined) return false;
    victim.letGo();
    // A link it wrote to stays open for its peer; it is not taken up again unasked.
    this.forget(victim);
    return true;
  }

  /** Open pooled connections (dialing included). */
  get size (): number {
    return this.remotes.size;
  }

  forget (remote: Remote): void {
    if (this.remotes.get(remote.key) === remote) this.remotes.delete(remote.key);
    this.maybeClosed();
  }

  /** Sockets ended and waiting for their remote to close. */
  get retiringCount (): number {
    return this.retiring.size;
  }

  /**
   * A link a remote no longer writes to: it stays open (its owner closes
   * it), and frames it holds unflushed are reported lost if it breaks.
   */
  watch (socket: AnySocket, counts: FrameCount, remote: RemoteInfo, failure: Error | undefined): void {
    const ctx = this.ctx;
    if (socket.destroyed) settle(counts, ctx.gate.memory);
    else socket.once('close', () => settle(counts, ctx.gate.memory));
    if (counts.written === counts.flushed) return;
    let reported = false;
    const report = (): void => {
      const lost = counts.written - counts.flushed;
      if (reported || lost === 0) return;
      reported = true;
      ctx.report(new ConnectionLostError(lost, counts.written, { ...remote, cause: failure }));
    };
    if (socket.destroyed) report();
    else socket.once('close', report);
  }

  /**
   * A socket let go of: it has been (or is about to be) ended. A remote that
   * never closes its side would hold it forever, so it is destroyed after
   * `closeTimeout`; and at most `maxRemotes` wait at once, the oldest destroyed first.
   */
  track (socket: AnySocket, counts?: FrameCount, remote?: RemoteInfo): void {
    if (this.retiring.has(socket)) return;
    const ctx = this.ctx;
    // Frames handed to it and not yet flushed are lost if it breaks or is destroyed: say so.
    let failure: Error | undefined;
    let timedOut: Error | undefined;
    socket.on('error', (error) => { failure = error; });
    socket.once('close', () => {
      if (counts !== undefined) settle(counts, ctx.gate.memory);
      // A close timeout was reported already, with these counts.
      if (counts === undefined || (failure !== undefined && failure === timedOut)) return;
      const lost = counts.written - counts.flushed;
      if (lost > 0 || failure !== undefined) ctx.report(new ConnectionLostError(lost, counts.written, { ...remote, cause: failure }));
    });
    const timer = setTimeout(() => {
      const error = new CloseTimeoutError(`remote did not close within ${ctx.closeTimeout} ms after we ended the connection; destroyed`, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
      if (counts !== undefined) withFrames(error, { framesWritten: counts.written, framesLost: counts.written - counts.flushed });
      timedOut = error;
      ctx.report(error);
      socket.destroy(error);
    }, ctx.closeTimeout);
    timer.unref();
    this.retiring.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      this.retiring.delete(socket);
      this.maybeClosed();
    });
    if (this.retiring.size > ctx.maxRemotes) {
      const [oldest, oldTimer] = this.retiring.entries().next().value!;
      clearTimeout(oldTimer);
      ctx.report(new CloseTimeoutError(`more than ${ctx.maxRemotes} connections waiting to close; the oldest was destroyed`, { remoteAddress: oldest.remoteAddress, remotePort: oldest.remotePort }));
      oldest.destroy();
    }
  }

  /**
   * The secure context was replaced: every pooled connection ends after what
   * it was already handed (our own identity may be what changed), and those
   * whose server would not be accepted now (new CA, CRL, or policy) are
   * reported with ERR_PEER_UNTRUSTED. Dials still in their handshake start
   * again with the new material.
   */
  rotated (): void {
    const { factory, identity } = this.ctx;
    for (const remote of [...this.remotes.values()]) {
      const socket = remote.ownSocket as TLSSocket | undefined;
      if (socket !== undefined) {
        // Checked before letting go, so the connection is reported once.
        const certificate = factory.serverCertificate(socket);
        const problem = identity.recheckServer(factory.serverChain(socket), certificate, remote.expectedId ?? remote.peerId, remote.host, remote.port, factory.trust);
        if (problem !== undefined) this.ctx.report(new PeerUntrustedError(problem, subjectOf(certificate), remote.remote));
        // Links the peer dialled are re-checked by the inbound server, which closes those no longer trusted.
        remote.retireOwnConnection();
      } else if (remote.state === 'dialing') {
        remote.abandonDial();
      }
    }
  }

  /** Flushes queues (bounded by a short timeout), ends every connection, then calls back. */
  close (callback: () => void): void {
    this.closing = true;
    this.links.clear();
    this.closeCallbacks.push(callback);
    const timer = setTimeout(() => {
      for (const remote of this.remotes.values()) remote.destroy();
      for (const socket of this.retiring.keys()) socket.destroy(new CloseTimeoutError('close(): a connection let go of did not close in time; destroyed'));
    }, CLOSE_FLUSH_TIMEOUT);
    timer.unref();
    this.closeCallbacks.push(() => clearTimeout(timer));
    for (const remote of this.remotes.values()) remote.close();
    this.maybeClosed();
  }

  private maybeClosed (): void {
    if (this.closeCallbacks.length === 0 || this.remotes.size > 0 || this.retiring.size > 0) return;
    const callbacks = this.closeCallbacks;
    this.closeCallbacks = [];
    this.closing = false;
    for (const callback of callbacks) callback();
  }
}
