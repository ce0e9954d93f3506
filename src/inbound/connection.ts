/**
 * One inbound connection, from admission to close: a small state machine.
 *
 *   accepted --(first byte: TLS record)--> handshake --(secureConnection)--> open
 *   accepted --(first byte: plaintext)---------------------------------------> open
 *   any -----(fail, drop, socket close)--------------------------------------> closed
 *
 * `accepted`: admitted by the server, nothing read yet. In TLS mode the first
 * byte decides between a TLS handshake and plaintext (refused, or served
 * during a migration); in plain mode it is the first chunk of a frame.
 * `handshake`: the TLS server has the socket. `open`: frames are read
 * (decoder -> message validation -> identity policy -> the server's peer
 * ledger -> delivery). Until `open`, handshakeTimeout runs from acceptance.
 *
 * The server (server.ts) owns admission, the sweep of deadlines, eviction and
 * the counters; a connection reports to it through `ConnectionHost`. Nothing
 * here emits: every failure goes to `host.report` once per connection.
 *
 * Links (tls/link.ts): an inbound TLS connection negotiated as a link is
 * bound to a remote by its first frame (`host.bindLink`), after which the
 * pool may write frames on it. The same read loop serves the other end of a
 * link, our own dialled connection (`Connection.outbound`): it is born
 * `open`, has no admission and no idle deadline (the pool owns its life),
 * and checks every frame as an inbound connection does, against the
 * server's certificate.
 */
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { channels } from '../diagnostics';
import {
  ClusterMismatchError,
  FrameTooLargeError,
  PeerUnauthorizedError,
  PeerUntrustedError,
  PlaintextRefusedError,
  TlsHandshakeError,
  type TransportError,
  withRemote
} from '../errors';
import type { ResolvedOptions } from '../options';
import { describeCertificate, type IdentityPolicy } from '../tls/identity';
import type { AnySocket, SocketFactory } from '../tls/socket-factory';
import { subjectOf } from '../tls/trust';
import { parseMessage, type Message, type Sender } from '../wire/message';
import { TLS_HANDSHAKE, TLS_REFUSAL_ALERT, looksLikeTls, tlsToPlain } from '../wire/protocol-sniff';
import { FrameDecoder, FrameOverflow } from './frame-decoder';

const CR = 0x0d;

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

export type ConnectionState = 'accepted' | 'handshake' | 'open' | 'closed';

/** What a connection needs from the server that admitted it. */
export interface ConnectionHost {
  readonly options: ResolvedOptions;
  readonly factory: SocketFactory;
  readonly identity: IdentityPolicy;
  /** The coarse clock (monotonic ms), updated by the server's sweep and accepts. */
  readonly now: number;
  /** Bytes read from every connection (stats). */
  countBytes (bytes: number): void;
  /** A plaintext connection reached a TLS transport (migration stats). */
  notePlaintextConnection (): void;
  /** True past `tls.plaintext.until`. */
  pastPlaintextDeadline (): boolean;
  /** The connection is open: its TLS handshake finished, or (plain) its first byte arrived. */
  opened (conn: Connection): void;
  /** A frame passed every check of the connection: the server's peer ledger, then the event. */
  accept (conn: Connection, message: Message): void;
  /** The first frame on an inbound link: bind it to the remote it speaks for, if it proves one. */
  bindLink (conn: Connection, sender: Sender): void;
  /** A TLS ClientHello arrived: start the handshake (state 'handshake') now or when a slot is free. */
  startHandshake (conn: Connection): void;
  /** Counts and emits one error. */
  report (error: Error): void;
  /** The connection is gone (its sockets closed or are closing): forget it. */
  closed (conn: Connection): void;
  /**
   * True once this turn of the event loop has spent its budget on frames
   * (every connection's together): the rest of a chunk's frames wait for the
   * next turn, so that a burst of costly frames cannot stall the node.
   */
  turnSpent (): boolean;
}

/**
 * A connection's sockets (the raw one, and the TLS one over it) point to it,
 * so one set of handlers serves every connection: Node calls a listener with
 * the socket as `this`. In plain mode a connection carries one message, so
 * four closures per connection were a measurable part of it.
 */
const kConnection = Symbol('gossipmonger-tls-transport:connection');
type ConnectionSocket = AnySocket & { [kConnection]: Connection };

export class Connection {
  state: ConnectionState = 'accepted';
  /** Frames read from a plaintext peer during a migration (TLS mode only). */
  plaintext = false;
  /** The socket frames are read from: `raw`, or the TLS socket over it. */
  socket: AnySocket | undefined;
  readonly decoder: FrameDecoder;
  /** When the unfinished frame's first byte arrived (coarse clock), 0 between frames. */
  frameStarted = 0;
  lastActive: number;
  /** Frames delivered on this connection: what proves it is useful (eviction ranks by it). */
  framesDelivered = 0;
  info: EventInfo | undefined;
  certificate: PeerCertificate | undefined;
  /**
   * The gossipmonger id the remote's certificate speaks for, once a message
   * has passed `authorize: 'sender-id'` (unverified ids are not recorded).
   */
  peerId: string | undefined;
  /**
   * Without an identity policy (or in plaintext): the first sender id this
   * connection carried, the only id it can prove by contact (membership).
   */
  speaksFor: string | undefined;
  /** The last sender delivered on it: what a function policy is asked again after a rotation. */
  lastSender: Sender | undefined;
  /** Why the connection was closed, when it failed. */
  error: Error | undefined;
  /** Complete frames read but not yet handled: they wait for the next turn (see `turnSpent`), the socket paused. */
  #waiting: Buffer[] | undefined;
  /** The rotation generation of the secure context when it was accepted (TLS). */
  generation: number;
  /** An inbound TLS connection negotiated as a link and not yet refused binding. */
  link = false;
  /** The remote key an inbound link is bound to: the pool may write on it. */
  linkKey: string | undefined;
  /**
   * The read side of our own dialled link; `onFrame` tells its pool a frame
   * arrived (activity). Undefined for an inbound connection.
   */
  readonly outbound: { onFrame: () => void } | undefined;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;

  constructor (
    private readonly host: ConnectionHost,
    readonly raw: Socket,
    /** IPv4 address or IPv6 /64 (net/addresses.ts); '' for our own dialled link. */
    readonly source: string,
    readonly acceptedAt: number,
    outbound?: { onFrame: () => void; remoteAddress: string; remotePort: number }
  ) {
    this.outbound = outbound;
    this.remoteAddress = outbound?.remoteAddress ?? raw.remoteAddress;
    this.remotePort = outbound?.remotePort ?? raw.remotePort;
    this.lastActive = acceptedAt;
    this.decoder = new FrameDecoder(host.options.maxFrameSize);
    this.generation = host.factory.generation;
    (raw as ConnectionSocket)[kConnection] = this;
    raw.on('error', onSocketError);
    raw.on('close', onSocketClose);
  }

  get closed (): boolean {
    return this.state === 'closed';
  }

  /**
   * Reads frames from our own dialled link (already verified by dial.ts):
   * `certificate` is the server's, against which every sender is checked.
   */
  static outbound (host: ConnectionHost, socket: TLSSocket, certificate: PeerCertificate | undefined, remote: { remoteAddress: string; remotePort: number; peerId: string | undefined }, onFrame: () => void): Connection {
    // Its source names the destination we dialled: membership charges what its frames introduce to it.
    const conn = new Connection(host, socket, `dial:${remote.remoteAddress}:${remote.remotePort}`, host.now, { onFrame, remoteAddress: remote.remoteAddress, remotePort: remote.remotePort });
    conn.peerId = remote.peerId;
    conn.certificate = certificate;
    conn.state = 'open';
    const info: EventInfo = { ...conn.remote, secure: true, authorized: socket.authorized };
    if (certificate !== undefined) info.certificate = describeCertificate(certificate);
    conn.#read(socket, info);
    return conn;
  }

  /** A frame we wrote on this inbound link: activity for the idle deadline. */
  touch (): void {
    this.lastActive = this.host.now;
  }

  /** Where the remote is, for errors and channel messages. */
  get remote (): { remoteAddress: string | undefined; remotePort: number | undefined } {
    return { remoteAddress: this.remoteAddress, remotePort: this.remotePort };
  }

  /** Starts reading: plain mode reads frames at once; TLS mode looks at the first byte first. */
  start (): void {
    if (!this.host.factory.secure) {
      this.#readPlain();
      return;
    }
    // Look at the first byte before choosing TLS: plaintext gets its own clear
    // refusal (or is served during a migration) instead of a TLS parse error.
    // The server's sweep bounds the wait (handshakeTimeout from accept).
    this.raw.once('readable', () => this.#sniff());
  }

  #sniff (): void {
    const raw = this.raw;
    if (this.closed) return;
    const chunk = raw.read() as Buffer | null;
    if (chunk === null) {
      // Closed before saying anything: a probe. In TLS mode that is a failed handshake.
      this.fail(new TlsHandshakeError('connection closed before the TLS handshake', this.remote));
      return;
    }
    raw.unshift(chunk);
    this.lastActive = this.host.now;
    if (chunk[0] === TLS_HANDSHAKE) {
      // Now, or once a handshake slot is free (maxHandshakes).
      this.host.startHandshake(this);
      return;
    }
    const plaintext = this.host.options.tls!.plaintext;
    this.host.notePlaintextConnection();
    if (!plaintext.accept || this.host.pastPlaintextDeadline()) {
      // Tell the sender in the only language it might check: a TLS alert.
      // A gossip receiver never writes, so our plaintext senders take any
      // TLS record back as "the remote speaks TLS" (ERR_PROTOCOL_MISMATCH).
      raw.write(TLS_REFUSAL_ALERT);
      this.fail(new PlaintextRefusedError(this.remote, plaintext.accept));
      return;
    }
    this.plaintext = true;
    this.#open();
    this.#readPlain();
    if (this.#graceTimer !== undefined) this.socket!.end();
  }

  /** The TLS handshake finished (the TLS server's 'secureConnection'). */
  secured (socket: TLSSocket): void {
    if (this.closed) return;
    const { factory, options, identity } = this.host;
    this.socket = socket;
    // TLS 1.2 renegotiation would let a client make us pay a full handshake
    // again (Node allows three per 10 minutes); nginx, HAProxy and Go refuse it.
    // An attempt now errors the socket (ERR_TLS_RENEGOTIATION_DISABLED) and closes it.
    socket.disableRenegotiation();
    if (!factory.acceptsAlpn(socket.alpnProtocol)) {
      // A client that offered no ALPN at all completes the handshake; refuse it here.
      this.fail(new ClusterMismatchError(factory.clusterLabel, socket.alpnProtocol ?? false, this.remote));
      return;
    }
    this.link = factory.isLink(socket);
    // The abbreviated reader: on Node 20 it is the cheapest first read of a
    // socket's peer certificate (getPeerX509Certificate() copies the chain
    // first: measured 146 us against 65 us; bench/cert-readers.ts).
    let certificate: PeerCertificate | undefined;
    if (options.tls!.requestCert) certificate = peerCertificate(socket);
    this.certificate = certificate;
    if (this.generation !== factory.generation) {
      // The handshake began before a rotation and ran on the old material:
      // check the client's certificate again against the current CA and CRL.
      const problem = this.untrusted();
      if (problem !== undefined) {
        this.fail(new PeerUntrustedError(problem, subjectOf(certificate), this.remote));
        return;
      }
      this.generation = factory.generation;
    }
    if (certificate !== undefined) identity.notePeer(certificate);
    const info: EventInfo = { ...this.remote, secure: true, authorized: socket.authorized };
    if (certificate) info.certificate = describeCertificate(certificate);
    (socket as ConnectionSocket)[kConnection] = this;
    socket.on('close', onSocketClose);
    this.#open();
    this.#read(socket, info);
    // Closing (finish()) while the handshake ran: it completes, then our side
    // ends. Not from inside this callback: under TLS 1.3 OpenSSL writes the
    // session ticket (which tells our senders they are accepted, see
    // outbound/dial.ts) as Node goes on reading after it, and a close_notify
    // written first reads as a refusal.
    if (this.#graceTimer !== undefined) setImmediate(() => { if (!this.closed) socket.end(); });
  }

  /** Past its handshake (or, plain, its first byte): admission stops counting it as one in progress. */
  #open (): void {
    this.state = 'open';
    this.host.opened(this);
  }

  /** Frames straight from the accepted TCP socket: plain mode, or plaintext during a migration. */
  #readPlain (): void {
    this.#read(this.raw, { ...this.remote, secure: false, authorized: false });
  }

  #read (socket: AnySocket, info: EventInfo): void {
    this.socket = socket;
    this.info = info;
    this.lastActive = this.host.now;
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    if (socket !== this.raw) socket.on('error', onSocketError);
  }

  // ------------------------------------------------------------ read loop

  onData (chunk: Buffer): void {
    if (this.closed) return;
    if (this.state === 'accepted') {
      // The first chunk of a plain connection (a TLS one is open at its handshake).
      this.#open();
      if (chunk[0] === TLS_HANDSHAKE && looksLikeTls(chunk)) {
        // A ClientHello on a plain port: the peer has options.tls and we do not.
        this.fail(tlsToPlain(this.remote));
        return;
      }
    }
    const now = this.host.now;
    this.host.countBytes(chunk.length);
    let frames: Buffer[];
    const decoder = this.decoder;
    try {
      frames = decoder.push(chunk);
    } catch (error) {
      this.#refuseFrame(this.#decodeError(error));
      return;
    }
    // The frame deadline starts at a frame's first byte; later bytes never move it.
    if (decoder.buffered === 0) this.frameStarted = 0;
    else if (this.frameStarted === 0 || frames.length > 0) this.frameStarted = now;
    // Empty lines (a lone "\r" may start one) are not activity: a "\n" every
    // few seconds would otherwise hold a slot forever without a message.
    if (frames.length > 0 || decoder.buffered > 1 || (decoder.buffered === 1 && chunk[chunk.length - 1] !== CR)) this.lastActive = now;
    if (frames.length > 0) this.#handle(frames, false);
  }

  /**
   * Handles `frames` until the turn's budget is spent (`first`: the first
   * one whatever the budget, so a later turn always makes progress): the
   * rest wait, the socket paused so that nothing more is read meanwhile (TCP
   * pushes back on the sender), and are handled first in a later turn.
   */
  #handle (frames: Buffer[], first: boolean): void {
    const host = this.host;
    for (let i = 0; i < frames.length && !this.closed; i++) {
      if ((i > 0 || !first) && host.turnSpent()) {
        this.#waiting = i === 0 ? frames : frames.slice(i);
        this.socket?.pause();
        setImmediate(this.#resume);
        return;
      }
      this.#onFrame(frames[i]!);
    }
  }

  readonly #resume = (): void => {
    const frames = this.#waiting!;
    this.#waiting = undefined;
    if (this.closed) return;
    this.#handle(frames, true);
    if (this.#waiting !== undefined || this.closed) return;
    if (this.#endWaiting) this.onEnd();
    else this.socket?.resume();
  };

  /** The sender's end came while frames were waiting: handled after them. */
  #endWaiting = false;

  onEnd (): void {
    if (this.closed) return;
    if (this.#waiting !== undefined) {
      this.#endWaiting = true;
      return;
    }
    if (this.#graceTimer !== undefined) {
      // Closing (finish()): the sender may have ended only because we did, so
      // the end does not complete an unterminated frame (senders of this
      // package and 0.1.6 terminate every frame); it is let go of, unreported.
      this.drop();
      return;
    }
    let last: Buffer | null;
    try {
      last = this.decoder.end();
    } catch (error) {
      this.#refuseFrame(this.#decodeError(error));
      return;
    }
    if (last !== null) this.#onFrame(last);
    // The sender has said all it will, and a receiver writes nothing back:
    // close now. On plain TCP that is the FIN that Node's automatic end()
    // would send, without its shutdown() call and the stream's finish round
    // (one connection per message makes that a measurable part of it). A TLS
    // socket is left to end on its own, with its close_notify.
    if (!this.closed && this.socket === this.raw && this.outbound === undefined) this.raw.destroy();
  }

  #decodeError (error: unknown): Error {
    if (error instanceof FrameOverflow) return new FrameTooLargeError(error.limit, undefined, this.remote);
    return error as Error;
  }

  /** One complete frame: validate, check identity, hand to the server. */
  #onFrame (frame: Buffer): void {
    let message: Message;
    try {
      message = parseMessage(frame);
    } catch (error) {
      this.#refuseFrame(error as TransportError);
      return;
    }
    const host = this.host;
    if (!this.plaintext && !host.identity.inbound(message.sender, this.certificate, this.remote)) {
      this.#refuseFrame(new PeerUnauthorizedError(message.sender.id, this.remote));
      return;
    }
    if (this.plaintext && host.pastPlaintextDeadline()) {
      // The deadline timer closes plaintext connections at `until`; a frame
      // read in the same turn as the deadline passed is refused here.
      this.#refuseFrame(new PlaintextRefusedError(this.remote, true));
      return;
    }
    this.lastSender = message.sender;
    if (!this.plaintext && host.identity.bindsSenderId) this.peerId = message.sender.id;
    if (this.outbound !== undefined) this.outbound.onFrame();
    else if (this.link && this.linkKey === undefined) {
      // Bound before the event: gossipmonger answers a digest from inside it.
      host.bindLink(this, message.sender);
      if (this.linkKey === undefined) this.link = false;
    }
    host.accept(this, message);
  }

  // ------------------------------------------------------------ rotation

  /**
   * Why this TLS connection's client certificate would not be accepted now
   * (identity policy: CA, CRL, then the policy for the last sender it spoke
   * for). Undefined when it still would be, or when there is no client
   * certificate to check (no requestCert).
   */
  untrusted (): string | undefined {
    const { options, identity, factory } = this.host;
    // A bound link was trusted for its certificate even without requestCert.
    if (!options.tls!.requestCert && this.linkKey === undefined) return undefined;
    return identity.recheckClient((this.socket as TLSSocket).getPeerCertificate(true), this.certificate, this.lastSender, factory.trust, this.remote);
  }

  /** The client certificate of a TLS connection (read once; requestCert reads it at the handshake). */
  clientCertificate (): PeerCertificate | undefined {
    this.certificate ??= peerCertificate(this.socket as TLSSocket);
    return this.certificate;
  }

  // ------------------------------------------------------------ closing

  /**
   * The server is closing. A connection that is reading frames (open, or
   * plain and not read yet) is asked to stop rather than cut: our side ends
   * (under TLS with a close_notify) and what the sender has already written
   * is still read and delivered, until it closes its side (a pooled sender of
   * this package does as soon as it sees our end) or `grace` ms have passed;
   * then it is dropped like any other. Cutting it instead reset what was in
   * flight, and every sender reported ERR_CONNECTION_LOST for a clean stop.
   * A TLS connection still in its handshake (or not yet past its first
   * byte) completes it first, then ends the same way: cut during the
   * handshake, a TLS 1.3 client (which finishes first) reads the close as a
   * refusal of its certificate (ERR_TLS_REFUSED).
   */
  finish (grace: number): void {
    if (this.closed) return;
    this.#graceTimer = setTimeout(() => this.drop(), grace);
    this.#graceTimer.unref();
    const socket = this.socket;
    const reading = socket !== undefined && (this.state === 'open' || (this.state === 'accepted' && !this.host.factory.secure));
    // Otherwise secured() (or the plaintext path of #sniff) ends it once it is open.
    if (reading) socket.end();
  }

  /** Bounds finish(): the connection is dropped when it fires. */
  #graceTimer: NodeJS.Timeout | undefined;

  /** Closes the connection without reporting an error. */
  drop (): void {
    if (this.#graceTimer !== undefined) clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.host.closed(this);
    const { raw, socket } = this;
    if (this.outbound !== undefined) {
      // Our own dial: its TLS socket has no TCP handle of its own to reset.
      raw.destroy();
      return;
    }
    if (wasOpen && this.frameStarted === 0) {
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

  /**
   * One of its sockets closed: the server forgets the connection (once). The
   * state is left as it is: the reason may still arrive after the close (the
   * TLS server reports a failed handshake after its socket closed), and the
   * connection must still report it, once.
   */
  socketClosed (): void {
    if (this.#graceTimer !== undefined) clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.host.closed(this);
  }

  /** A frame refused: published on the frame:refused channel, then the connection fails. */
  #refuseFrame (error: Error): void {
    if (this.closed) return;
    withRemote(error, this.remote);
    if (channels.frameRefused.hasSubscribers) channels.frameRefused.publish({ ...this.remote, error });
    this.fail(error);
  }

  /**
   * A socket error. The pool reports those of our own dialled link (with the
   * frames they cost); this side only stops reading.
   */
  socketError (error: Error): void {
    if (this.outbound === undefined) {
      this.fail(error);
    } else if (!this.closed) {
      this.error = error;
      this.drop();
    }
  }

  /** One error per connection, then close it. */
  fail (error: Error): void {
    if (this.closed) return;
    const failure = withRemote(error, { ...this.remote, peerId: this.peerId });
    this.error = failure;
    this.drop();
    this.host.report(failure);
  }
}

/** A TLS socket's peer certificate, abbreviated; undefined when it presented none. */
function peerCertificate (socket: TLSSocket): PeerCertificate | undefined {
  const cert = socket.getPeerCertificate();
  return cert && Object.keys(cert).length > 0 ? cert : undefined;
}

// The shared socket handlers (`this` is the socket; see kConnection).

function onSocketData (this: ConnectionSocket, chunk: Buffer): void {
  this[kConnection].onData(chunk);
}

function onSocketEnd (this: ConnectionSocket): void {
  this[kConnection].onEnd();
}

function onSocketError (this: ConnectionSocket, error: Error): void {
  this[kConnection].socketError(error);
}

/** 'close' of the raw socket or of the TLS one over it: the server forgets the connection once either way. */
function onSocketClose (this: ConnectionSocket): void {
  this[kConnection].socketClosed();
}
