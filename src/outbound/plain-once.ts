/**
 * One plaintext connection per message, the 0.1.6 wire: connect, write the
 * frame, end, wait for the remote to close.
 *
 * This is the default mode's hot path, so it costs one small record per
 * message: the listeners are shared module functions (Node calls them with
 * the socket as `this`), and one sweep timer for all connections bounds each
 * one's steps: connected within `connectTimeout` of the dial, frame flushed
 * within `connectTimeout` of the connect, closed by the remote within
 * `connectTimeout` of the flush (each enforced within a quarter of it). Bytes
 * back are no progress: a receiver never writes, so a remote that trickles
 * bytes cannot hold the socket (and with it an outbound slot). Profiled
 * against 0.1.6, the closures, the second timer and the Buffer copy per
 * message of the general dial path cost about 40 us of sender CPU per
 * message, a fifth of the whole; a timer per socket (re-armed on every read
 * and write) cost as much again under load.
 *
 * The TLS twin is tls-once.ts (through dial.ts, which knows when a TLS
 * remote has accepted the connection); pooled connections are pool.ts.
 */
import { channels } from '../diagnostics';
import { ConnectTimeoutError, OutboundLimitError, withFrames, withRemote, type RemoteInfo } from '../errors';
import type { OutboundCounters } from './counters';
import { Lease, frameCharge, type OutboundGate } from './gate';
import { looksLikeTls, plaintextToTls } from '../wire/protocol-sniff';
import type { AnySocket, SocketFactory } from '../tls/socket-factory';

export interface PlainOnceContext {
  readonly factory: SocketFactory;
  readonly gate: OutboundGate;
  /** Bounds the connect, then the exchange (ms without activity). */
  readonly connectTimeout: number;
  readonly counters: OutboundCounters;
  report (error: Error): void;
  /** A connection to `host:port` was accepted (an outage of it is over). */
  reached (host: string, port: number): void;
}

/** What one message's socket carries until it closes. */
interface Pending {
  readonly sender: PlainOnce;
  readonly remote: RemoteInfo & { remoteAddress: string; remotePort: number };
  frame: string | undefined;
  readonly bytes: number;
  connected: boolean;
  /** The kernel took the whole frame. */
  flushed: boolean;
  failure: Error | undefined;
  /** The outbound slots this connection holds until it closes. */
  readonly lease: Lease;
  /** What the frame is charged to the outbound memory budget until the kernel has it (0 once given back). */
  charged: number;
  /** When the current step began: the dial, the connect, the flush (performance.now() ms). */
  since: number;
}

const kPending = Symbol('gossipmonger-tls-transport:send-once');
type SendSocket = AnySocket & { [kPending]: Pending };

export class PlainOnce {
  /** Sockets not closed yet; close() waits for them. */
  readonly open = new Set<SendSocket>();
  /** Runs while any socket is open. */
  private sweeper: NodeJS.Timeout | undefined;

  constructor (readonly ctx: PlainOnceContext) {}

  /** Destroys every connection whose current step has taken connectTimeout. */
  private readonly sweep = (): void => {
    const now = performance.now();
    const timeout = this.ctx.connectTimeout;
    for (const socket of this.open) {
      if (now - socket[kPending].since >= timeout && !socket.destroyed) socket.destroy(new ConnectTimeoutError(timeout, socket[kPending].remote));
    }
    if (this.open.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  };

  /**
   * Sends one frame once the outbound gate lets it through; a refusal is
   * reported with its one frame dropped. `line` is the JSON, `size` its UTF-8
   * length. The default mode's hot path: decided at once unless a name must
   * be resolved and checked.
   */
  send (peerId: string | undefined, host: string, port: number, line: string, size: number): void {
    const gate = this.ctx.gate;
    // The frame is held until the kernel takes it: charged to the budget first.
    const cost = frameCharge(line, size) + 2;
    if (!gate.memory.take(cost)) {
      this.#refused(new OutboundLimitError('maxQueuedBytes', gate.memory.max, { remoteAddress: host, remotePort: port }), peerId);
      return;
    }
    const now = gate.openNow(host, port);
    if (now instanceof Lease) this.#connect(host, port, peerId, line + '\r\n', size + 2, undefined, now, cost);
    else if (now !== undefined) this.#refused(now, peerId, cost);
    else {
      gate.open(host, port, (refused, lease, address) => {
        if (refused !== undefined) this.#refused(refused, peerId, cost);
        else this.#connect(host, port, peerId, line + '\r\n', size + 2, address, lease!, cost);
      });
    }
  }

  /** `charged`: what the frame held of the memory budget, given back. */
  #refused (refused: Error, peerId: string | undefined, charged = 0): void {
    if (charged > 0) this.ctx.gate.memory.give(charged);
    this.ctx.report(withFrames(withRemote(refused, { peerId }), { framesDropped: 1 }));
  }

  /**
   * `frame` is the whole line, terminator included; `bytes` its UTF-8 length.
   * `address`: where the socket goes when the name was resolved and checked.
   */
  #connect (host: string, port: number, peerId: string | undefined, frame: string, bytes: number, address: string | undefined, lease: Lease, charged: number): void {
    this.ctx.counters.opened++;
    const socket = this.ctx.factory.connect(address === undefined ? { host, port } : { host, port, address }, false, false) as SendSocket;
    socket[kPending] = { sender: this, remote: { remoteAddress: host, remotePort: port, peerId }, frame, bytes, connected: false, flushed: false, failure: undefined, lease, charged, since: performance.now() };
    // At the cap, the gate may give this slot to another destination: the socket goes (onError reports it).
    lease.holder = socket;
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('connect', onConnect);
    this.open.add(socket);
    if (this.sweeper === undefined) {
      // A quarter of the timeout (10 ms to 1 s): each step ends within 25% (at least 10 ms) past it.
      this.sweeper = setInterval(this.sweep, Math.min(1000, Math.max(10, Math.floor(this.ctx.connectTimeout / 4))));
      this.sweeper.unref();
    }
  }
}

function onConnect (this: SendSocket): void {
  const pending = this[kPending];
  pending.connected = true;
  pending.since = performance.now();
  pending.sender.ctx.reached(pending.remote.remoteAddress, pending.remote.remotePort);
  if (channels.outboundOpened.hasSubscribers) channels.outboundOpened.publish({ host: pending.remote.remoteAddress, port: pending.remote.remotePort, secure: false, resumed: false });
  pending.sender.ctx.counters.sent(pending.bytes);
  this.once('finish', onFlushed);
  this.end(pending.frame!);
  pending.frame = undefined;
  // A gossip receiver never writes: read what comes so that its FIN is seen.
  this.on('data', onData);
}

/** 'finish': the kernel has the whole frame (not emitted after an error). */
function onFlushed (this: SendSocket): void {
  const pending = this[kPending];
  pending.flushed = true;
  pending.since = performance.now();
  discharge(pending);
}

/** The kernel has the frame, or the socket is gone: its bytes leave the memory budget. */
function discharge (pending: Pending): void {
  if (pending.charged === 0) return;
  pending.sender.ctx.gate.memory.give(pending.charged);
  pending.charged = 0;
}

function onData (this: SendSocket, chunk: Buffer): void {
  const pending = this[kPending];
  // Bytes back are a TLS listener refusing our plaintext (it answers with an alert record).
  if (pending.failure !== undefined || !looksLikeTls(chunk)) return;
  // The listener refused the frame: certainly lost.
  fail(pending, withFrames(plaintextToTls(pending.remote), { framesWritten: 1, framesLost: 1 }));
}

function onError (this: SendSocket, error: Error): void {
  const pending = this[kPending];
  // One error per connection: a reset after a timeout is the same failure.
  if (pending.failure !== undefined) return;
  if (!pending.connected) {
    if (channels.outboundFailed.hasSubscribers) channels.outboundFailed.publish({ host: pending.remote.remoteAddress, port: pending.remote.remotePort, error });
    // Nothing was written: the one frame is dropped.
    fail(pending, withFrames(withRemote(error, pending.remote), { framesDropped: 1 }));
  } else {
    // The frame was written: lost for certain if the kernel never had it,
    // otherwise it may or may not have arrived.
    fail(pending, withFrames(withRemote(error, pending.remote), { framesWritten: 1, framesLost: pending.flushed ? 0 : 1 }));
  }
}

function fail (pending: Pending, error: Error): void {
  pending.failure = error;
  pending.sender.ctx.report(error);
}

function onClose (this: SendSocket): void {
  const pending = this[kPending];
  pending.sender.open.delete(this);
  discharge(pending);
  pending.frame = undefined;
  // The remote took the frame and closed: an exchange completed, the destination is proven.
  if (pending.flushed && pending.failure === undefined) pending.lease.completed();
  pending.lease.release();
  if (pending.connected && channels.outboundClosed.hasSubscribers) channels.outboundClosed.publish({ host: pending.remote.remoteAddress, port: pending.remote.remotePort, error: pending.failure });
}
