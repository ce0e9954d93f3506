/**
 * Opening an outbound connection and knowing when the remote has accepted it.
 *
 * Plain TCP: accepted on `connect`.
 * TLS 1.2: accepted on `secureConnect` (the server's Finished comes after it
 * checked our certificate).
 * TLS 1.3: the client sees `secureConnect` and can write before the server has
 * checked our certificate; a refusal then arrives as an alert or just a close.
 * An OpenSSL server sends its session tickets only after it has verified the
 * client, so the first ticket is the acceptance. A resumed session is accepted
 * at `secureConnect`: the server sends no new ticket then, and it only resumes
 * sessions it issued to a client it had accepted.
 *
 * No frame is written before acceptance, so a refusal always knows exactly how
 * many frames were not delivered.
 */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { channels, debug } from './diagnostics';
import { ClusterMismatchError, ConnectTimeoutError, TlsRefusedError } from './errors';
import type { AnySocket, ConnectTarget, SocketFactory } from './socket-factory';

export interface DialOptions extends ConnectTarget {
  connectTimeout: number;
  /** TLS for this connection (false: plaintext during a migration). */
  secure: boolean;
  /** A pooled connection (many frames) rather than one frame then end. */
  persistent: boolean;
  /** How many frames wait for this connection, for the refusal's count. */
  pendingFrames: () => number;
  /**
   * Checks the server's certificate (the one a resumed session was made with,
   * on resumption) before anything is written; an error refuses the connection.
   */
  checkServer?: (certificate: PeerCertificate | undefined) => Error | undefined;
}

/** A connection being opened. */
export interface Dialing {
  readonly socket: AnySocket;
  /**
   * The material it was opened with has been replaced: if not yet accepted,
   * destroy it and call `handlers.rotated` (the caller dials again).
   */
  abandon (): void;
}

export interface DialHandlers {
  /** The remote accepted the connection; the caller now owns every socket event. */
  accepted (socket: AnySocket): void;
  /**
   * The connection failed before acceptance: ERR_TLS_REFUSED when the TLS
   * remote closed or alerted after the handshake (it refused our certificate),
   * ERR_CLUSTER_MISMATCH, ERR_CONNECT_TIMEOUT, or Node's own error. The socket
   * is already destroyed.
   */
  failed (error: Error): void;
  /** A rotation replaced the material before the remote accepted; nothing was written. */
  rotated (): void;
}

export function dial (factory: SocketFactory, options: DialOptions, handlers: DialHandlers): Dialing {
  const { host, port } = options;
  const socket = factory.connect(options, options.secure, options.persistent);
  const generation = factory.generationOf(socket);
  const remote = { remoteAddress: host, remotePort: port };
  let settled = false;
  let handshaken = false;

  const timer = setTimeout(() => fail(new ConnectTimeoutError(options.connectTimeout, remote)), options.connectTimeout);

  function cleanup (): void {
    clearTimeout(timer);
    socket.removeListener('error', onError);
    socket.removeListener('close', onClose);
    socket.removeListener('end', onClose);
    socket.removeListener('session', onSession);
  }

  function fail (error: Error): void {
    if (settled) return;
    settled = true;
    cleanup();
    socket.destroy();
    if (channels.outboundFailed.hasSubscribers) channels.outboundFailed.publish({ host, port, error });
    debug('dial %s:%d failed: %s', host, port, (error as NodeJS.ErrnoException).code ?? error.message);
    handlers.failed(error);
  }

  function abandon (): void {
    if (settled) return;
    settled = true;
    cleanup();
    socket.destroy();
    debug('dial %s:%d abandoned: the secure context was rotated during its handshake', host, port);
    handlers.rotated();
  }

  function accept (): void {
    if (settled) return;
    if (generation !== factory.generation) {
      abandon();
      return;
    }
    settled = true;
    cleanup();
    if (channels.outboundOpened.hasSubscribers) {
      channels.outboundOpened.publish({ host, port, secure: options.secure && factory.secure, resumed: (socket as TLSSocket).isSessionReused?.() === true });
    }
    if (channels.outboundClosed.hasSubscribers) {
      let failure: Error | undefined;
      socket.on('error', (error) => { failure = error; });
      socket.once('close', () => channels.outboundClosed.publish({ host, port, error: failure }));
    }
    handlers.accepted(socket);
  }

  function onError (error: Error): void {
    if (factory.isClusterRefusal(error)) {
      // The server picked none of our ALPN names: it serves another cluster.
      fail(new ClusterMismatchError(factory.expectedAlpn!, false, { ...remote, cause: error }));
    } else if (handshaken) {
      // After the handshake, an error is the server refusing us (an alert such as
      // ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED); keep Node's error as the cause.
      fail(new TlsRefusedError(options.pendingFrames(), { ...remote, cause: error }));
    } else {
      fail(error);
    }
  }

  function onClose (): void {
    if (handshaken) fail(new TlsRefusedError(options.pendingFrames(), remote));
    else fail(Object.assign(new Error('connection closed before it was established'), { code: 'ECONNRESET' }));
  }

  function onSession (): void {
    // The ticket arrives while OpenSSL is still processing records; writing from
    // inside this callback corrupts the connection (measured: bad record mac).
    setImmediate(accept);
  }

  socket.on('error', onError);
  socket.on('close', onClose);

  if (!factory.secure || !options.secure) {
    socket.once('connect', accept);
  } else {
    const tlsSocket = socket as TLSSocket;
    tlsSocket.once('secureConnect', () => {
      handshaken = true;
      const expected = factory.expectedAlpn;
      if (expected !== undefined && tlsSocket.alpnProtocol !== expected) {
        fail(new ClusterMismatchError(expected, tlsSocket.alpnProtocol ?? false, remote));
        return;
      }
      // Who answered, checked before anything is written; only then may its
      // session tickets be cached.
      const certificate = factory.serverCertificate(tlsSocket);
      const refusal = options.checkServer?.(certificate);
      if (refusal !== undefined) {
        fail(refusal);
        return;
      }
      if (certificate !== undefined) factory.verified(tlsSocket, certificate);
      socket.on('end', onClose);
      if (tlsSocket.getProtocol() !== 'TLSv1.3' || tlsSocket.isSessionReused()) accept();
      else tlsSocket.once('session', onSession);
    });
  }
  return { socket, abandon };
}
