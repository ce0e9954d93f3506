/**
 * Every error this transport creates. One table of permanent codes, one base
 * class, one subclass per code with a default message (the undici layout).
 * Tests and users match on `code`; messages may be reworded.
 */

/** The one table of codes. README's error table is checked against it by a test. */
export const ERROR_CODES = {
  ERR_MALFORMED_PEER: 'remotePeer lacks transport.host or transport.port',
  ERR_FRAME_TOO_LARGE: 'a frame exceeded maxFrameSize (inbound: the connection is destroyed; outbound: nothing is sent)',
  ERR_INVALID_MESSAGE: 'a frame that is not UTF-8 JSON or does not fit the message schema',
  ERR_PEER_UNAUTHORIZED: 'tls.authorize refused a message for its certificate',
  ERR_CONNECT_TIMEOUT: 'an outbound connect plus TLS handshake took longer than connectTimeout',
  ERR_IDLE_TIMEOUT: 'an inbound connection sent nothing for idleTimeout',
  ERR_HANDSHAKE_TIMEOUT: 'an inbound connection did not send its first byte, or finish its TLS handshake, within handshakeTimeout of accept',
  ERR_TLS_REFUSED: 'the remote closed our TLS connection before accepting it; frames were not delivered',
  ERR_TLS_HANDSHAKE: 'an inbound TLS handshake failed (bad, missing or untrusted client certificate, protocol error)',
  ERR_BACKPRESSURE: 'a keepAlive connection has too many bytes queued; the frame was not queued',
  ERR_CONNECTION_LOST: 'a keepAlive connection broke after frames were handed to it; those may be lost',
  ERR_CLUSTER_MISMATCH: 'the remote belongs to another cluster (TLS ALPN did not match options.cluster)',
  ERR_PLAINTEXT_REFUSED: 'a plaintext connection reached a TLS transport that does not accept plaintext (or no longer does), or was open when tls.plaintext.until passed',
  ERR_PEER_UNTRUSTED: 'after setSecureContext(), a live connection\'s certificate no longer verifies (new CA, CRL or authorize policy); it was closed',
  ERR_DESTINATION_REFUSED: 'an outbound destination is outside outbound.allow (or its host name did not resolve); no socket was opened',
  ERR_OUTBOUND_LIMIT: 'an outbound cap (connections in flight overall, per destination, pooled remotes, or bytes queued) was reached; the frame was not sent, or its connection gave way to another destination',
  ERR_CLOSE_TIMEOUT: 'a connection we ended was not closed by its remote in time, or too many were waiting to close; it was destroyed',
  ERR_CERT_RELOAD: 'certificate files changed but the new set failed validation; the transport keeps its current material',
  ERR_TRUST_MATERIAL: 'a ca or crl that OpenSSL would read differently, or that would refuse every certificate it covers, was refused before use (constructor or setSecureContext)',
  ERR_CONNECTION_CLOSED: 'the remote closed an outbound connection before it was established',
  ERR_PROTOCOL_MISMATCH: 'the remote speaks TLS where plaintext was expected (or the reverse): one side lacks options.tls',
  ERR_TRANSPORT_CLOSED: 'a send after close(): nothing is sent, the frame is dropped and counted',
  ERR_FRAME_TIMEOUT: 'an inbound frame was not complete within frameTimeout of its first byte',
  ERR_CONNECTIONS_REFUSED: 'inbound connections from one source were refused or evicted (one report per source per interval, with counts)',
  ERR_PEER_LIMIT: 'messages named more new peers than maxPeers allows; those entries were dropped (one report per source per interval)'
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Where the remote end of a connection is, when known. Outbound, the address
 * and port are those the transport dialled (the peer's advertised host and
 * port), and `peerId` the gossipmonger id of the peer it was sending to.
 */
export interface RemoteInfo {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
  peerId?: string | undefined;
}

/** Adds the remote's address (and peer id) to an error that lacks them; Node's errors keep their own code. */
export function withRemote<E extends Error> (error: E, remote: RemoteInfo): E {
  const target = error as E & RemoteInfo;
  if (target.remoteAddress === undefined && remote.remoteAddress !== undefined) target.remoteAddress = remote.remoteAddress;
  if (target.remotePort === undefined && remote.remotePort !== undefined) target.remotePort = remote.remotePort;
  if (target.peerId === undefined && remote.peerId !== undefined) target.peerId = remote.peerId;
  return error;
}

/**
 * What a failed send says about its frames. Every error from the send path
 * carries these, so that a caller can account for each frame it handed over:
 * `framesDropped` were never written to a connection; of `framesWritten`,
 * `framesLost` are certainly lost (they had not reached the kernel, or the
 * remote refused the connection), and the rest reached the kernel and may
 * or may not have arrived.
 */
export interface FrameCounts {
  framesDropped?: number | undefined;
  framesWritten?: number | undefined;
  framesLost?: number | undefined;
}

/** Adds frame counts to an error that lacks them (Node's errors included). */
export function withFrames<E extends Error> (error: E, counts: FrameCounts): E {
  const target = error as E & FrameCounts;
  for (const key of ['framesDropped', 'framesWritten', 'framesLost'] as const) {
    if (counts[key] !== undefined && target[key] === undefined) target[key] = counts[key];
  }
  return error;
}

export interface TransportErrorOptions extends RemoteInfo {
  cause?: unknown;
}

/** Base class of every error the transport creates; `code` never changes. */
export class TransportError extends Error {
  readonly code: ErrorCode;
  remoteAddress?: string;
  remotePort?: number;
  /** The gossipmonger id of the peer, when the transport knows it (outbound sends; inbound under 'sender-id'). */
  peerId?: string;
  // Frame counts, on every error about a send (see FrameCounts); declared
  // only, so that an error without them has no such property at all.
  declare framesDropped?: number;
  declare framesWritten?: number;
  declare framesLost?: number;

  constructor (code: ErrorCode, message?: string, options: TransportErrorOptions = {}) {
    super(message ?? ERROR_CODES[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options.remoteAddress !== undefined) this.remoteAddress = options.remoteAddress;
    if (options.remotePort !== undefined) this.remotePort = options.remotePort;
    if (options.peerId !== undefined) this.peerId = options.peerId;
  }
}

export class MalformedPeerError extends TransportError {
  declare readonly code: 'ERR_MALFORMED_PEER';
  constructor (options?: TransportErrorOptions) {
    // 0.1.6 emitted exactly this message; users may match on it.
    super('ERR_MALFORMED_PEER', 'malformed remotePeer', options);
  }
}

export class FrameTooLargeError extends TransportError {
  declare readonly code: 'ERR_FRAME_TOO_LARGE';
  /** The limit in bytes that was exceeded. */
  readonly maxFrameSize: number;
  constructor (maxFrameSize: number, message?: string, options?: TransportErrorOptions) {
    super('ERR_FRAME_TOO_LARGE', message ?? `frame exceeds maxFrameSize of ${maxFrameSize} bytes`, options);
    this.maxFrameSize = maxFrameSize;
  }
}

export class InvalidMessageError extends TransportError {
  declare readonly code: 'ERR_INVALID_MESSAGE';
  constructor (message?: string, options?: TransportErrorOptions) {
    super('ERR_INVALID_MESSAGE', message, options);
  }
}

export interface PeerUnauthorizedOptions extends TransportErrorOptions {
  /** Outbound: the server we dialled does not prove the id of the peer we were sending to. */
  outbound?: boolean;
  /** Outbound: frames that were waiting for the connection and were not sent. */
  framesDropped?: number;
}

export class PeerUnauthorizedError extends TransportError {
  declare readonly code: 'ERR_PEER_UNAUTHORIZED';
  /**
   * Inbound: the sender id the message claimed. Outbound: the id of the peer
   * we were sending to, which the server's certificate did not prove.
   */
  readonly senderId: string;
  /** Outbound only: the id the server's certificate had to name (same as senderId). */
  readonly expectedId?: string;
  /** Outbound only: frames not sent (nothing is written before the check). */
  declare readonly framesDropped?: number;
  constructor (senderId: string, options: PeerUnauthorizedOptions = {}) {
    super('ERR_PEER_UNAUTHORIZED', options.outbound === true
      ? `server certificate does not name peer ${JSON.stringify(senderId)}; ${options.framesDropped ?? 0} frame(s) not sent`
      : `certificate does not authorize sender ${JSON.stringify(senderId)}`, options);
    this.senderId = senderId;
    if (options.outbound === true) {
      this.expectedId = senderId;
      this.framesDropped = options.framesDropped ?? 0;
    }
  }
}

export class ConnectTimeoutError extends TransportError {
  declare readonly code: 'ERR_CONNECT_TIMEOUT';
  /** Repeated timeouts to one destination are reported together: how many this report stands for (see outbound/outages.ts). */
  declare count?: number;
  /** `hint`: what probably happened, appended to the message. */
  constructor (timeout: number, options?: TransportErrorOptions, hint?: string) {
    super('ERR_CONNECT_TIMEOUT', `connect did not complete within ${timeout} ms${hint === undefined ? '' : `: ${hint}`}`, options);
  }
}

export class IdleTimeoutError extends TransportError {
  declare readonly code: 'ERR_IDLE_TIMEOUT';
  constructor (timeout: number, options?: TransportErrorOptions) {
    super('ERR_IDLE_TIMEOUT', `connection idle for ${timeout} ms`, options);
  }
}

export class HandshakeTimeoutError extends TransportError {
  declare readonly code: 'ERR_HANDSHAKE_TIMEOUT';
  /** `firstByte`: a plain connection that sent nothing at all within the timeout. */
  constructor (timeout: number, options?: TransportErrorOptions, firstByte = false) {
    super('ERR_HANDSHAKE_TIMEOUT', firstByte ? `no byte within ${timeout} ms of accept` : `TLS handshake did not complete within ${timeout} ms`, options);
  }
}

export class TlsRefusedError extends TransportError {
  declare readonly code: 'ERR_TLS_REFUSED';
  /** Frames that were waiting for this connection and were not delivered. */
  override readonly framesDropped: number;
  constructor (framesDropped: number, options?: TransportErrorOptions) {
    super('ERR_TLS_REFUSED', `remote closed the TLS connection before accepting it; ${framesDropped} frame(s) not delivered`, options);
    this.framesDropped = framesDropped;
  }
}

export class TlsHandshakeError extends TransportError {
  declare readonly code: 'ERR_TLS_HANDSHAKE';
  /** Node's or OpenSSL's reason: an `authorizationError` or an alert code. */
  readonly reason: string;
  constructor (reason: string, options?: TransportErrorOptions) {
    super('ERR_TLS_HANDSHAKE', `inbound TLS handshake failed: ${reason}`, options);
    this.reason = reason;
  }
}

export class BackpressureError extends TransportError {
  declare readonly code: 'ERR_BACKPRESSURE';
  /** The frame refused: always 1. */
  override readonly framesDropped = 1;
  constructor (queuedBytes: number, limit: number, options?: TransportErrorOptions) {
    super('ERR_BACKPRESSURE', `outbound queue holds ${queuedBytes} bytes (limit ${limit}); frame not queued`, options);
  }
}

export class ConnectionLostError extends TransportError {
  declare readonly code: 'ERR_CONNECTION_LOST';
  /** Frames handed to the socket that it had not yet passed to the kernel: certainly lost. */
  override readonly framesLost: number;
  /**
   * Every frame handed to this connection. The last of them may be lost too
   * (the kernel's send buffer goes with the connection); nothing tells which.
   */
  override readonly framesWritten: number;
  constructor (framesLost: number, framesWritten: number, options?: TransportErrorOptions) {
    super('ERR_CONNECTION_LOST', `connection lost after ${framesWritten} frame(s): ${framesLost} not yet flushed are lost, and the last ones flushed may not have arrived`, options);
    this.framesLost = framesLost;
    this.framesWritten = framesWritten;
  }
}

export class ClusterMismatchError extends TransportError {
  declare readonly code: 'ERR_CLUSTER_MISMATCH';
  /** `expected` is the ALPN name `gossipmonger/<cluster>`; `got` what the remote negotiated, or false. */
  constructor (expected: string, got: string | false, options?: TransportErrorOptions) {
    super('ERR_CLUSTER_MISMATCH', `remote is not in cluster ALPN ${JSON.stringify(expected)} (negotiated: ${got === false ? 'none' : JSON.stringify(got)})`, options);
  }
}

export class PlaintextRefusedError extends TransportError {
  declare readonly code: 'ERR_PLAINTEXT_REFUSED';
  /**
   * `accepted`: this transport accepted plaintext during a migration and its
   * `tls.plaintext.until` has passed; false (the default) when it never accepted any.
   */
  constructor (options?: TransportErrorOptions, accepted = false) {
    super('ERR_PLAINTEXT_REFUSED', accepted
      ? 'plaintext connection refused: tls.plaintext.until has passed, this transport no longer accepts plaintext'
      : 'plaintext connection refused: this transport speaks TLS only (tls is set and tls.plaintext.accept is not)', options);
  }
}

export class PeerUntrustedError extends TransportError {
  declare readonly code: 'ERR_PEER_UNTRUSTED';
  /** Why the certificate no longer verifies: an OpenSSL-style code or 'authorize'. */
  readonly reason: string;
  /** The certificate's subject CN, when it has one. */
  readonly subject: string | undefined;
  constructor (reason: string, subject: string | undefined, options?: TransportErrorOptions) {
    super('ERR_PEER_UNTRUSTED', `certificate${subject === undefined ? '' : ` of ${JSON.stringify(subject)}`} no longer verifies after a rotation (${reason}); connection closed`, options);
    this.reason = reason;
    this.subject = subject;
  }
}

export class DestinationRefusedError extends TransportError {
  declare readonly code: 'ERR_DESTINATION_REFUSED';
  /** The host as given (a name or an address). */
  readonly host: string;
  /** The address the name resolved to and that the allow-list refused, if it resolved. */
  readonly address: string | undefined;
  constructor (host: string, address: string | undefined, options?: TransportErrorOptions & { reason?: string }) {
    super('ERR_DESTINATION_REFUSED', options?.reason ?? `outbound destination ${host}${address !== undefined && address !== host ? ` (${address})` : ''} is not in outbound.allow; not sent`, options);
    this.host = host;
    this.address = address;
  }
}

export class OutboundLimitError extends TransportError {
  declare readonly code: 'ERR_OUTBOUND_LIMIT';
  /** Which cap: 'maxConnections', 'maxPerDestination', 'maxPooledRemotes' or 'maxQueuedBytes' (the outbound.* option). */
  readonly limit: string;
  readonly max: number;
  /**
   * Set when the frame's connection (or queued frame) was taken back at the
   * cap for another destination: why this destination gave way ('never
   * completed an exchange', 'held the most').
   */
  readonly evicted?: string;
  /** `evicted`: see the field. */
  constructor (limit: string, max: number, options?: TransportErrorOptions, evicted?: string) {
    super('ERR_OUTBOUND_LIMIT', evicted === undefined
      ? `outbound.${limit} (${max}) reached; frame not sent`
      : `outbound.${limit} (${max}) reached: this destination ${evicted}, and gave way to another; its frame was given up`, options);
    this.limit = limit;
    this.max = max;
    if (evicted !== undefined) this.evicted = evicted;
  }
}

export class CloseTimeoutError extends TransportError {
  declare readonly code: 'ERR_CLOSE_TIMEOUT';
  constructor (message: string, options?: TransportErrorOptions) {
    super('ERR_CLOSE_TIMEOUT', message, options);
  }
}

export class CertReloadError extends TransportError {
  declare readonly code: 'ERR_CERT_RELOAD';
  /** Which check failed: 'missing', 'read', 'parse', 'key-mismatch', 'chain', 'expired', 'not-yet-valid', 'identity', or a TrustMaterialError reason ('crl-expired'...). */
  readonly reason: string;
  constructor (reason: string, message: string, options?: TransportErrorOptions) {
    super('ERR_CERT_RELOAD', `certificate reload refused (${reason}): ${message}; keeping the current material`, options);
    this.reason = reason;
  }
}

/**
 * `ca` or `crl` material refused where it enters (the constructor's `tls`,
 * `setSecureContext()`; watchCertificates() reports the same reasons as
 * ERR_CERT_RELOAD): what OpenSSL would read differently from what the
 * re-check reads, or what would make it refuse every certificate the material
 * covers. Nothing was swapped in.
 */
export class TrustMaterialError extends TransportError {
  declare readonly code: 'ERR_TRUST_MATERIAL';
  /** 'ca-unreadable', 'ca-anchor', 'ca-same-name', 'crl-unreadable', 'crl-expired', 'crl-not-yet-valid', 'crl-unsupported', 'crl-duplicate-issuer', 'crl-signature', 'crl-missing'. */
  readonly reason: string;
  constructor (reason: string, message: string, options?: TransportErrorOptions) {
    super('ERR_TRUST_MATERIAL', `${message} [${reason}]`, options);
    this.reason = reason;
  }
}

export class ConnectionClosedError extends TransportError {
  declare readonly code: 'ERR_CONNECTION_CLOSED';
  constructor (message?: string, options?: TransportErrorOptions) {
    super('ERR_CONNECTION_CLOSED', message, options);
  }
}

export class ProtocolMismatchError extends TransportError {
  declare readonly code: 'ERR_PROTOCOL_MISMATCH';
  constructor (message?: string, options?: TransportErrorOptions) {
    super('ERR_PROTOCOL_MISMATCH', message, options);
  }
}

export class TransportClosedError extends TransportError {
  declare readonly code: 'ERR_TRANSPORT_CLOSED';
  /** Frames dropped so far because the transport is closed. */
  override readonly framesDropped: number;
  constructor (framesDropped: number, options?: TransportErrorOptions) {
    super('ERR_TRANSPORT_CLOSED', 'transport is closed: nothing is sent after close(); this and any later frames are dropped (counted in stats().errors)', options);
    this.framesDropped = framesDropped;
  }
}

export class FrameTimeoutError extends TransportError {
  declare readonly code: 'ERR_FRAME_TIMEOUT';
  constructor (timeout: number, options?: TransportErrorOptions) {
    super('ERR_FRAME_TIMEOUT', `frame not complete within ${timeout} ms of its first byte`, options);
  }
}

export class ConnectionsRefusedError extends TransportError {
  declare readonly code: 'ERR_CONNECTIONS_REFUSED';
  /** The source: an IPv4 address, an IPv6 /64, or `'*'` for sources past the per-interval budget. */
  readonly source: string;
  /** Connections refused or evicted since the last report for this source. */
  readonly count: number;
  /** `count` by reason: `source-rate`, `source-connections`, `max-connections`, `evicted`. */
  readonly reasons: Record<string, number>;
  constructor (source: string, count: number, reasons: Record<string, number> = {}, options?: TransportErrorOptions) {
    const why = Object.entries(reasons).map(([reason, n]) => `${reason}: ${n}`).join(', ');
    super('ERR_CONNECTIONS_REFUSED', `${count} inbound connection(s) from ${source} refused or evicted (${why})`, options);
    this.source = source;
    this.count = count;
    this.reasons = reasons;
  }
}

export class PeerLimitError extends TransportError {
  declare readonly code: 'ERR_PEER_LIMIT';
  /** The source the entries came from (see ConnectionsRefusedError). */
  readonly source: string;
  /** Peer entries (digest entries or senders) dropped since the last report for this source. */
  readonly count: number;
  readonly maxPeers: number;
  constructor (source: string, count: number, maxPeers: number, options?: TransportErrorOptions) {
    super('ERR_PEER_LIMIT', `${count} new peer(s) from ${source} dropped: maxPeers (${maxPeers}) reached`, options);
    this.source = source;
    this.count = count;
    this.maxPeers = maxPeers;
  }
}

/**
 * Codes of Node's own errors, as they reach the 'error' event: a socket's
 * errno (`ECONNREFUSED`, `ECONNRESET`, `EPIPE`, `EADDRINUSE`...), a DNS
 * failure (`ENOTFOUND`, `EAI_AGAIN`), an OpenSSL certificate verification
 * failure (`CERT_HAS_EXPIRED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`,
 * `DEPTH_ZERO_SELF_SIGNED_CERT`, `ERROR_IN_CERT_NOT_AFTER_FIELD`...), Node's
 * TLS and socket errors (`ERR_TLS_CERT_ALTNAME_INVALID`, `ERR_SSL_...`).
 *
 * Written as patterns that none of this package's codes match, so that
 * `switch (error.code)` narrows a case such as `'ERR_TLS_HANDSHAKE'` to
 * TlsHandshakeError alone, and a misspelt `'ERR_CONECTION_LOST'` does not
 * compile: Node's errno codes start with E but never with ERR, and Node's
 * own ERR_ codes that can reach the event are listed by family.
 */
type Letter = 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H' | 'I' | 'J' | 'K' | 'L' | 'M' | 'N' | 'O' | 'P' | 'Q' | 'R' | 'S' | 'T' | 'U' | 'V' | 'W' | 'X' | 'Y' | 'Z';
export type NodeErrorCode =
  | `${Exclude<Letter, 'E'>}${string}`
  | `E${Exclude<Letter, 'R'>}${string}`
  | `ER${Exclude<Letter, 'R'>}${string}`
  | `ERROR_${string}`
  | `ERR_SSL_${string}`
  | `ERR_OSSL_${string}`
  | `ERR_SOCKET_${string}`
  | `ERR_STREAM_${string}`
  | `ERR_TLS_CERT_${string}`
  | 'ERR_TLS_HANDSHAKE_TIMEOUT'
  | 'ERR_TLS_INVALID_PROTOCOL_VERSION'
  | 'ERR_TLS_RENEGOTIATION_DISABLED';

/**
 * An error from Node (a socket, DNS, OpenSSL), emitted as it came, with where
 * it happened added (`remoteAddress`, `remotePort`, `peerId`) and, on the
 * send path, its frame counts.
 */
export interface NodeError extends Error, RemoteInfo, FrameCounts {
  /** Node's code; undefined only for an error without one (a `tls.checkServerIdentity` of yours may return such). */
  code?: NodeErrorCode;
  errno?: number;
  syscall?: string;
  /**
   * A destination that keeps failing the same way (unreachable, refused) is
   * reported once per outage: the first failure at once (`count` 1), then
   * one report per interval with the failures since (`count`), their frame
   * counts summed. `stats().errors` counts every failure.
   */
  count?: number;
}

/**
 * What the 'error' event carries: one of this package's errors (each class
 * with its literal `code`), or one of Node's. `switch (error.code)` narrows
 * to the class.
 */
export type EmittedError =
  | MalformedPeerError
  | FrameTooLargeError
  | InvalidMessageError
  | PeerUnauthorizedError
  | ConnectTimeoutError
  | IdleTimeoutError
  | HandshakeTimeoutError
  | TlsRefusedError
  | TlsHandshakeError
  | BackpressureError
  | ConnectionLostError
  | ClusterMismatchError
  | PlaintextRefusedError
  | PeerUntrustedError
  | DestinationRefusedError
  | OutboundLimitError
  | CloseTimeoutError
  | CertReloadError
  | ConnectionClosedError
  | ProtocolMismatchError
  | TransportClosedError
  | FrameTimeoutError
  | ConnectionsRefusedError
  | PeerLimitError
  | NodeError;

/**
 * This package's errors that are thrown, never emitted: ERR_TRUST_MATERIAL
 * refuses `ca` or `crl` material at the constructor and at
 * setSecureContext() (a watched file reports the same as ERR_CERT_RELOAD).
 */
export type ThrownTransportError = TrustMaterialError;

/**
 * Codes of the errors thrown (never emitted) for a programmer's mistake. A
 * test keeps README's list equal to this table.
 */
export const THROWN_CODES = {
  ERR_INVALID_OPTION: 'an option or argument has the wrong type, value or name, or a method needs an option the transport was not given (a TypeError or RangeError, naming the option)',
  ERR_ALREADY_LISTENING: 'listen() on a transport that is already listening'
} as const;

export type ThrownCode = keyof typeof THROWN_CODES;

/** A TypeError or RangeError thrown for a wrong option or argument. */
export type InvalidOptionError = (TypeError | RangeError) & { code: 'ERR_INVALID_OPTION' };

/**
 * Gives a TypeError or RangeError from option checking its code, where it
 * has none (Node's own, such as ERR_INVALID_ARG_TYPE, keep theirs); anything
 * else is returned as it is.
 */
export function asOptionError (error: unknown): unknown {
  if ((error instanceof TypeError || error instanceof RangeError) && (error as { code?: unknown }).code === undefined) {
    Object.defineProperty(error, 'code', { value: 'ERR_INVALID_OPTION', enumerable: true, writable: true, configurable: true });
  }
  return error;
}

/**
 * Warnings: conditions a user must see that are not failures. Not emitted as
 * 'error' (nothing failed yet, and an 'error' without a listener ends the
 * process): as a 'warning' event on the transport when it has a listener,
 * otherwise with process.emitWarning(), which Node prints to stderr.
 */
export const WARNING_CODES = {
  WARN_CERT_EXPIRED: 'this node\'s own certificate has expired: peers refuse it',
  WARN_CERT_NOT_YET_VALID: 'this node\'s own certificate is not valid yet (or the clock is wrong): peers refuse it',
  WARN_CERT_EXPIRES_SOON: 'this node\'s own certificate expires within CERT_WARNING_DAYS (14 days)'
} as const;

export type WarningCode = keyof typeof WARNING_CODES;

export interface CertificateWarningDetails {
  /** The certificate's subject, e.g. `CN=node-a`. */
  subject: string;
  fingerprint256: string;
  /** Validity, in ms since the epoch. */
  validFrom: number;
  validTo: number;
}

/** This node's own certificate is expired, not yet valid, or about to expire. */
export class CertificateWarning extends Error {
  readonly code: WarningCode;
  readonly subject: string;
  readonly fingerprint256: string;
  readonly validFrom: number;
  readonly validTo: number;
  constructor (code: WarningCode, message: string, details: CertificateWarningDetails) {
    super(message);
    this.name = 'CertificateWarning';
    this.code = code;
    this.subject = details.subject;
    this.fingerprint256 = details.fingerprint256;
    this.validFrom = details.validFrom;
    this.validTo = details.validTo;
  }
}
