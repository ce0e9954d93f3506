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
 */
import type { TLSSocket } from 'node:tls';
import type { IdentityPolicy } from '../tls/identity';
import { subjectOf } from '../tls/trust';
import { BackpressureError, CloseTimeoutError, ConnectionLostError, OutboundLimitError, PeerUntrustedError, ProtocolMismatchError, withFrames, withRemote, type RemoteInfo } from '../errors';
import { looksLikeTls, plaintextToTls } from '../wire/protocol-sniff';
import type { OutboundCounters } from './counters';
import { dial, type Dialing } from './dial';
import { Fifo } from './fifo';
import { destinationOf } from '../net/addresses';
import { frameCharge, type MemoryBudget, type OutboundGate } from './gate';
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
  /** Checks the server of a new connection for its peer id; peer ids are part of a remote's key when it is per peer. */
  readonly identity: IdentityPolicy;
  /** TLS or plaintext for a new connection (plaintext only during a migration). */
  secure (): boolean;
  readonly counters: OutboundCounters;
  report (error: Error): void;
  /** A connection to `host:port` was accepted (an outage of it is over). */
  reached (host: string, port: number): void;
}

export class Remote {
  socket: AnySocket | undefined;
  state: 'idle' | 'dialing' | 'open' = 'idle';
  /** The connection being opened, while `state` is 'dialing' and a socket exists. */
  private dialing: Dialing | undefined;
  /** Frames not yet handed to the socket, and their UTF-8 sizes. `queuedBytes` is their charge. */
  private frames = new Fifo<string>();
  private sizes = new Fifo<number>();
  queuedBytes = 0;
  /**
   * Frames handed to the current socket, and how many of those it has
   * flushed: one object per connection, so that a socket let go of (a
   * rotation) keeps its own count and its late flushes do not count for the next.
   */
  private counts: FrameCount = newCount();
  private onFlushed: (error?: Error | null) => void = () => {};
  /** The socket corked in this tick, if any (the connection may change before it is uncorked). */
  private corked: AnySocket | undefined;
  private scheduled = false;
  lastUsed = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  closing = false;
  /** The gossipmonger id of the peer last sent to at this address, for errors. */
  peerId: string | undefined;
  /** A connection to it was accepted once: it is no tarpit (see gate.ts, fair share). */
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
    const socket = this.socket;
    const buffered = socket === undefined ? 0 : Math.min(this.counts.unflushedBytes, 3 * socket.writableLength);
    const cost = charge(frame, size);
    if (this.queuedBytes + buffered + cost > ctx.maxQueuedBytes) {
      ctx.report(new BackpressureError(this.queuedBytes + buffered, ctx.maxQueuedBytes, this.remote));
      this.forgetIfUnused();
      return;
    }
    const memory = ctx.gate.memory;
    if (!memory.take(cost, this.queuedBytes + buffered, this.accepted)) {
      ctx.report(withFrames(new OutboundLimitError('maxQueuedBytes', memory.max, this.remote), { framesDropped: 1 }));
      this.forgetIfUnused();
      return;
    }
    this.lastUsed = Date.now();
    if (this.state === 'open' && this.queued === 0 && !this.socket!.writableNeedDrain) {
      this.write(this.socket!, frame, size, cost);
      return;
    }
    this.frames.push(frame);
    this.sizes.push(size);
    this.queuedBytes += cost;
    if (this.state === 'idle') this.connect();
  }

  /** A remote made for a frame that was refused holds nothing: it must not keep a place in the pool. */
  private forgetIfUnused (): void {
    if (this.state === 'idle' && this.queued === 0 && this.socket === undefined) this.pool.forget(this);
  }

  /**
   * A write callback: the socket is done with its oldest frame. A write that
   * failed (the socket was ended or destroyed meanwhile: EPIPE,
   * ERR_STREAM_DESTROYED) did not flush its frame, and is not counted as if it
   * had: the frame is reported lost when the connection closes. Either way
   * its bytes leave the memory budget (unless its socket's close gave them back).
   */
  private flushedOne (counts: FrameCount, error?: Error | null): void {
    const cost = counts.charges.shift()!;
    counts.unflushedBytes -= cost;
    if (!counts.settled) this.pool.ctx.gate.memory.give(cost);
    if (error) return;
    counts.flushed++;
    if (counts === this.counts && this.closing && this.queued === 0 && counts.flushed === counts.written) this.socket?.end();
  }

  private readonly uncork = (): void => {
    const socket = this.corked;
    this.corked = undefined;
    socket?.uncork();
  };

  /** `size`: the frame's UTF-8 length; `cost`: its charge (see `charge`). */
  private write (socket: AnySocket, frame: string, size: number, cost: number): boolean {
    // Small frames sent in one tick go out together: one TLS record, one
    // syscall (measured: +44% for 1 KB frames over plain TCP). A large frame is
    // a syscall's worth on its own, and corking it only adds a copy (measured:
    // -15% for 64 KB frames), so it is written straight away.
    if (this.corked === undefined && size < CORK_BELOW) {
      this.corked = socket;
      socket.cork();
      process.nextTick(this.uncork);
    }
    const counts = this.counts;
    counts.written++;
    counts.unflushedBytes += cost;
    counts.charges.push(cost);
    this.pool.ctx.counters.sent(size);
    return socket.write(frame, 'utf8', this.onFlushed);
  }

  /** Hands queued frames to the socket, a batch at a time. */
  private readonly flush = (): void => {
    this.scheduled = false;
    const socket = this.socket;
    if (this.state !== 'open' || socket === undefined) return;
    let n = 0;
    while (this.frames.length > 0 && n < BATCH_FRAMES) {
      const size = this.sizes.shift()!;
      const frame = this.frames.shift()!;
      const cost = charge(frame, size);
      this.queuedBytes -= cost;
      const ok = this.write(socket, frame, size, cost);
      n++;
      if (!ok) break;
    }
    if (this.frames.length === 0) {
      if (this.closing && this.counts.flushed === this.counts.written) socket.end();
    } else if (!socket.writableNeedDrain && !this.scheduled) {
      // More to send and room for it: yield first, so one busy remote cannot
      // hold the event loop.
      this.scheduled = true;
      setImmediate(this.flush);
    }
  };

  private connect (): void {
    const ctx = this.pool.ctx;
    this.state = 'dialing';
    this.dialStarted = performance.now();
    const secure = ctx.secure();
    ctx.gate.open(this.host, this.port, (refused, lease, address) => {
      if (refused !== undefined) {
        this.failed(withRemote(refused, { peerId: this.peerId }));
        return;
      }
      if (this.state !== 'dialing' || this.queued === 0) {
        // Closed or emptied (its queue given way) while the name was resolving.
        lease!.release();
        if (this.state === 'dialing') this.state = 'idle';
        this.pool.forget(this);
        return;
      }
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
          this.dialing = undefined;
          // Accepted: the destination is proven (a tarpit never gets here).
          lease!.completed();
          this.open(socket);
        },
        failed: (error) => {
          this.dialing = undefined;
          this.failed(error);
        },
        rotated: () => {
          // Opened with material a rotation replaced: nothing was written, so
          // the queue simply waits for a connection made with the new material.
          this.dialing = undefined;
          this.state = 'idle';
          if (this.queued > 0 && !this.closing) this.connect();
          else this.pool.forget(this);
        }
      });
      this.dialing = dialing;
      // At the outbound cap, the gate may give this slot to another destination: the socket goes.
      lease!.holder = dialing.socket;
      dialing.socket.once('close', () => lease!.release());
    });
  }

  private failed (error: Error): void {
    // Retrying a refused or unreachable remote in a loop would only burn CPU;
    // gossip tries again on its own schedule.
    const dropped = this.queued;
    this.dropQueue();
    this.state = 'idle';
    this.pool.ctx.report(withFrames(error, { framesDropped: dropped }));
    this.pool.forget(this);
  }

  /** A rotation: a connection still being opened is abandoned and reopened with the new material. */
  abandonDial (): void {
    this.dialing?.abandon();
  }

  /** Its connection never opened and a dial is under way (not a name resolving): it may give way at the cap. */
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

  private open (socket: AnySocket): void {
    this.pool.ctx.counters.accepted(socket);
    this.pool.ctx.reached(this.host, this.port);
    this.socket = socket;
    this.state = 'open';
    this.accepted = true;
    const counts = newCount();
    this.counts = counts;
    this.onFlushed = (error?: Error | null) => this.flushedOne(counts, error);
    let failure: Error | undefined;
    socket.on('error', (error) => { failure = error; });
    socket.on('drain', this.flush);
    // The server sends nothing on this connection; read and discard, so that
    // its FIN is seen. Bytes back on a plaintext connection are a TLS listener
    // refusing it.
    socket.on('data', (chunk: Buffer) => {
      if (failure === undefined && (socket as { encrypted?: boolean }).encrypted !== true && looksLikeTls(chunk)) {
        failure = plaintextToTls(this.remote);
        socket.destroy();
      }
    });
    // The remote ended its side: it is closing (a receiver ends nothing
    // otherwise) and reads what we have already written until our end. Write
    // no more on this connection: later frames go on a new one, and this one
    // is let go of with its counts, so a break is still reported.
    socket.once('end', () => {
      if (this.socket === socket && failure === undefined) this.detach().end();
    });
    socket.once('close', () => this.closed(socket, failure));
    this.lastUsed = Date.now();
    this.armIdle();
    this.flush();
    // Accepted by a remote that had already ended (it accepted us, then began
    // closing: dial.ts): what was waiting is written, and nothing more.
    if (socket.readableEnded && this.socket === socket) this.detach().end();
  }

  private armIdle (delay = this.pool.ctx.idleTimeout): void {
    this.idleTimer = setTimeout(this.checkIdle, delay);
    this.idleTimer.unref();
  }

  /** Re-arms for the remaining time instead of resetting a timer per frame. */
  private readonly checkIdle = (): void => {
    this.idleTimer = undefined;
    const socket = this.socket;
    if (this.state !== 'open' || socket === undefined) return;
    const idleFor = Date.now() - this.lastUsed;
    const timeout = this.pool.ctx.idleTimeout;
    if (idleFor >= timeout && this.queued === 0 && socket.writableLength === 0) {
      this.detach().end();
    } else {
      this.armIdle(Math.max(1, timeout - idleFor));
    }
  };

  /** Forgets the current socket and its idle timer. */
  private release (): void {
    this.socket = undefined;
    this.state = 'idle';
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** Lets go of the socket without reporting; it ends or breaks on its own. */
  detach (): AnySocket {
    const socket = this.socket!;
    this.release();
    this.pool.track(socket, this.counts, this.remote);
    if (this.queued === 0) this.pool.forget(this);
    else if (!this.closing) this.connect();
    return socket;
  }

  private closed (socket: AnySocket, failure: Error | undefined): void {
    if (this.socket !== socket) return;
    settle(this.counts, this.pool.ctx.gate.memory);
    const { written, flushed } = this.counts;
    const lost = written - flushed;
    this.release();
    // Closing, the frames still queued go nowhere: they are counted as dropped.
    const dropped = this.closing ? this.queued : 0;
    if (failure instanceof ProtocolMismatchError) {
      // A TLS listener refused the plaintext connection: every frame on it is lost.
      this.pool.ctx.report(withFrames(failure, { framesWritten: written, framesLost: written, framesDropped: dropped }));
    } else if (lost > 0 || failure !== undefined || dropped > 0) {
      this.pool.ctx.report(withFrames(new ConnectionLostError(lost, written, { ...this.remote, cause: failure }), { framesDropped: dropped }));
    }
    if (this.queued > 0 && !this.closing) this.connect();
    else {
      this.dropQueue();
      this.pool.forget(this);
    }
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
    const socket = this.socket;
    if (this.state === 'open' && socket !== undefined && this.queued === 0 && this.counts.flushed === this.counts.written) socket.end();
  }

  destroy (): void {
    const dropped = this.queued;
    this.dropQueue();
    if (dropped > 0) {
      this.pool.ctx.report(withFrames(new CloseTimeoutError(`close(): ${dropped} queued frame(s) not flushed in time were dropped`, this.remote), { framesDropped: dropped }));
    }
    // With an error, so that the frames it still held are reported lost (closed()).
    this.socket?.destroy(new CloseTimeoutError('close(): the connection did not flush in time; destroyed', this.remote));
    this.dialing?.socket.destroy();
    // Let go of while closing with frames queued (its remote ended: detach()),
    // it holds no socket, so no close will forget it: close() would wait forever.
    if (this.socket === undefined && this.dialing === undefined) this.pool.forget(this);
  }
}

export class ConnectionPool {
  private readonly remotes = new Map<string, Remote>();
  /** Sockets let go of (rotation, idle, eviction) that have not closed yet, with their close timers. */
  private readonly retiring = new Map<AnySocket, NodeJS.Timeout>();
  private closeCallbacks: Array<() => void> = [];

  constructor (readonly ctx: PoolContext) {
    ctx.gate.memory.reclaim = (bytes, held, proven) => this.shed(bytes, held, proven);
  }

  /** `frame`: one line, terminator included; `size`: its UTF-8 length. */
  send (peerId: string | undefined, host: string, port: number, frame: string, size: number): void {
    const id = this.ctx.identity.perPeer ? peerId : undefined;
    const key = id === undefined ? `${host}:${port}` : `${id}@${host}:${port}`;
    let remote = this.remotes.get(key);
    if (remote === undefined) {
      if (this.remotes.size >= this.ctx.maxRemotes && !this.makeRoom(host, port)) {
        this.ctx.report(withFrames(new OutboundLimitError('maxPooledRemotes', this.ctx.maxRemotes, { remoteAddress: host, remotePort: port, peerId }), { framesDropped: 1 }));
        return;
      }
      remote = new Remote(this, key, id, host, port);
      this.remotes.set(key, remote);
    }
    remote.peerId = peerId;
    remote.send(frame, size);
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
    victim.detach().end();
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
      if (remote.state === 'open') {
        // Checked before detaching, so the connection is reported once.
        const socket = remote.socket as TLSSocket;
        const certificate = factory.serverCertificate(socket);
        const problem = identity.recheckServer(factory.serverChain(socket), certificate, remote.expectedId ?? remote.peerId, remote.host, remote.port, factory.trust);
        if (problem !== undefined) this.ctx.report(new PeerUntrustedError(problem, subjectOf(certificate), remote.remote));
        remote.detach().end();
      } else if (remote.state === 'dialing') {
        remote.abandonDial();
      }
    }
  }

  /** Flushes queues (bounded by a short timeout), ends every connection, then calls back. */
  close (callback: () => void): void {
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
    for (const callback of callbacks) callback();
  }
}
