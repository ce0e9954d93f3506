/**
 * One TLS connection per message (keepAlive off under `tls`): dial, wait for
 * the remote to accept (dial.ts: under TLS 1.3 that is later than
 * `secureConnect`), write the frame, end, wait for the remote to close.
 *
 * The plaintext twin is plain-once.ts; pooled connections are pool.ts.
 * Every step is bounded: the dial by `connectTimeout` (dial.ts), then the
 * frame flushed within `connectTimeout`, then the remote's close within
 * `connectTimeout`. Bytes back do not extend it (a receiver never writes), so
 * a remote that trickles bytes cannot hold the socket or its outbound slots.
 */
import { CloseTimeoutError, ConnectTimeoutError, OutboundLimitError, withFrames, withRemote, type RemoteInfo } from '../errors';
import type { IdentityPolicy } from '../tls/identity';
import type { AnySocket, SocketFactory } from '../tls/socket-factory';
import type { OutboundCounters } from './counters';
import { dial, type Dialing } from './dial';
import type { Lease, OutboundGate } from './gate';
import type { HandshakeSlots } from './handshakes';

export interface TlsOnceContext {
  readonly factory: SocketFactory;
  readonly gate: OutboundGate;
  readonly identity: IdentityPolicy;
  readonly connectTimeout: number;
  /** The bound on TLS handshakes in progress, shared with the pool. */
  readonly handshakes: HandshakeSlots;
  readonly counters: OutboundCounters;
  report (error: Error): void;
  /** A connection to `host:port` was accepted (an outage of it is over). */
  reached (host: string, port: number): void;
  /** The transport is closing: a dial abandoned by a rotation is not started again. */
  closing (): boolean;
}

/** A send waiting for a handshake slot. */
interface Waiting {
  remote: RemoteInfo;
  lease: Lease;
  discharge: () => void;
  cancel: () => boolean;
  started: boolean;
}

export class TlsOnce {
  /** Sockets not closed yet; the transport's close() waits for them. */
  readonly open = new Set<AnySocket>();
  /** Dials not yet accepted: a rotation abandons them (they start again with the new material). */
  readonly #dialing = new Set<Dialing>();
  /** Sends waiting for a handshake slot: close() drops them (each one reported). */
  readonly #waiting = new Set<Waiting>();

  constructor (private readonly ctx: TlsOnceContext) {}

  /** `frame` is the whole line as bytes, terminator included. */
  send (peerId: string | undefined, host: string, port: number, frame: Buffer): void {
    const gate = this.ctx.gate;
    // The frame is held until the kernel takes it (after the handshake): charged to the budget first.
    if (!gate.memory.take(frame.length)) {
      this.ctx.report(withFrames(new OutboundLimitError('maxQueuedBytes', gate.memory.max, { remoteAddress: host, remotePort: port, peerId }), { framesDropped: 1 }));
      return;
    }
    let charged = frame.length;
    const discharge = (): void => {
      gate.memory.give(charged);
      charged = 0;
    };
    gate.open(host, port, (refused, lease, address) => {
      if (refused !== undefined) {
        discharge();
        this.ctx.report(withFrames(withRemote(refused, { peerId }), { framesDropped: 1 }));
        return;
      }
      const waiting: Waiting = { remote: { remoteAddress: host, remotePort: port, peerId }, lease: lease!, discharge, cancel: () => false, started: false };
      waiting.cancel = this.ctx.handshakes.take((release) => {
        waiting.started = true;
        this.#waiting.delete(waiting);
        this.#dial(peerId, host, port, address, frame, lease!, discharge, release);
      });
      if (waiting.started) return;
      this.#waiting.add(waiting);
      // At the outbound cap the gate may take this slot back for another
      // destination (fair share): the dial then never starts.
      lease!.holder = {
        destroy: (error?: Error) => {
          if (!waiting.cancel()) return;
          this.#waiting.delete(waiting);
          discharge();
          this.ctx.report(withFrames(withRemote(error ?? new Error('outbound slot taken back'), waiting.remote), { framesDropped: 1 }));
        }
      };
    });
  }

  /** close(): sends still waiting for a handshake slot are dropped, each one reported. */
  close (): void {
    for (const waiting of this.#waiting) {
      if (!waiting.cancel()) continue;
      waiting.discharge();
      waiting.lease.release();
      this.ctx.report(withFrames(new CloseTimeoutError('close(): a frame waiting for a TLS handshake slot was dropped', waiting.remote), { framesDropped: 1 }));
    }
    this.#waiting.clear();
  }

  /** The secure context was replaced: dials still in their handshake start again with the new material. */
  rotated (): void {
    for (const dialing of [...this.#dialing]) dialing.abandon();
  }

  /**
   * `discharge`: gives the frame's bytes back to the memory budget (once the
   * kernel has it, or it is dropped); idempotent. `releaseSlot`: gives the
   * handshake slot back once the dial settles; idempotent.
   */
  #dial (peerId: string | undefined, host: string, port: number, address: string | undefined, frame: Buffer, lease: Lease, discharge: () => void, releaseSlot: () => void): void {
    const { ctx } = this;
    const timeout = ctx.connectTimeout;
    const remote = { remoteAddress: host, remotePort: port, peerId };
    ctx.counters.opened++;
    // Set when a rotation hands this dial's outbound slots over to a new one.
    let handedOver = false;
    const dialing = dial(ctx.factory, {
      host,
      port,
      ...(address === undefined ? {} : { address }),
      peerId,
      ...(ctx.identity.perPeer && peerId !== undefined ? { expectedId: peerId } : {}),
      connectTimeout: timeout,
      secure: true,
      persistent: false,
      pendingFrames: () => 1,
      checkServer: (certificate) => ctx.identity.checkServer(peerId, host, port, 1, certificate)
    }, {
      accepted: (connected) => {
        releaseSlot();
        this.#dialing.delete(dialing);
        // A TLS server accepted us: a tarpit never gets this far.
        lease.completed();
        ctx.counters.accepted(connected);
        ctx.reached(host, port);
        let failed = false;
        let flushed = false;
        connected.on('error', (error) => {
          if (failed) return;
          failed = true;
          // The frame was written: lost for certain if the kernel never had it,
          // otherwise it may or may not have arrived.
          ctx.report(withFrames(withRemote(error, remote), { framesWritten: 1, framesLost: flushed ? 0 : 1 }));
        });
        const expire = (): void => { connected.destroy(new ConnectTimeoutError(timeout, remote)); };
        let deadline = setTimeout(expire, timeout);
        connected.once('close', () => clearTimeout(deadline));
        // A gossip receiver never writes: read and drop, so that its FIN is seen.
        connected.on('data', () => {});
        ctx.counters.sent(frame.length);
        connected.end(frame, (error?: Error | null) => {
          discharge();
          if (error) return;
          flushed = true;
          clearTimeout(deadline);
          if (!connected.destroyed) deadline = setTimeout(expire, timeout);
        });
      },
      failed: (error) => {
        releaseSlot();
        this.#dialing.delete(dialing);
        // Nothing was written: the one frame is dropped.
        ctx.report(withFrames(error, { framesDropped: 1 }));
      },
      rotated: () => {
        // Nothing was written: send the frame on a connection made with the
        // new material, which takes over this one's outbound slots.
        this.#dialing.delete(dialing);
        handedOver = true;
        if (ctx.closing()) {
          releaseSlot();
          discharge();
          lease.release();
        } else {
          // The new dial takes over the handshake slot too.
          this.#dial(peerId, host, port, address, frame, lease, discharge, releaseSlot);
        }
      }
    });
    const socket = dialing.socket;
    // At the cap, the gate may give this slot to another destination: the socket goes (and reports why).
    lease.holder = socket;
    this.#dialing.add(dialing);
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      if (!handedOver) {
        discharge();
        lease.release();
      }
    });
  }
}
