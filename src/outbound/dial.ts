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
import { channels } from '../diagnostics';
import { ClusterMismatchError, ConnectTimeoutError, ConnectionClosedError, TlsRefusedError, withRemote } from '../errors';
import type { AnySocket, ConnectTarget, SocketFactory } from '../tls/socket-factory';

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
   * ERR_CLUSTER_MISMATCH, ERR_CONNECT_TIMEOUT, ERR_CONNECTION_CLOSED, or
   * Node's own error, each with the remote's address, port and peer id. The
   * socket is already destroyed.
   */
  failed (error: Error): void;
  /** A rotation replaced the material before the remote accepted; nothing was written. */
  rotated (): void;
}

export function dial (factory: SocketFactory, options: DialOptions, handlers: DialHandlers): Dialing {
  const { host, port } = options;
  const socket = factory.connect(options, options.secure, options.persistent);
  const remote = { remoteAddress: host, remotePort: port, peerId: options.peerId };
  const tlsDial = factory.secure && options.secure;
  let settled = false;
  let connected = false;
  let handshaken = false;
  /** A TLS 1.3 session ticket arrived: the server has accepted us (acceptance waits a turn, see onSession). */
  let ticketed = false;

  const timer = setTimeout(() => fail(new ConnectTimeoutError(options.connectTimeout, remote, tlsDial && connected
    // TCP is up but no ServerHello came back: the usual reason is a plaintext listener (0.1.6 waits forever).
    ? 'the TCP connection opened but the TLS handshake did not finish; the remote probably does not speak TLS (a plain transport or 0.1.6)'
    : undefined)), options.connectTimeout);

  function cleanup (): void {
    clearTimeout(timer);
    socket.removeListener('error', onError);
    socket.removeListener('close', onClose);
    socket.removeListener('end', onEnd);
    socket.removeListener('session', onSession);
  }

  function fail (error: Error): void {
    if (settled) return;
    settled = true;
    cleanup();
    socket.destroy();
    withRemote(error, remote);
    if (channels.outboundFailed.hasSubscribers) channels.outboundFailed.publish({ host, port, error });
    handlers.failed(error);
  }

  function abandon (): void {
    if (settled) return;
    settled = true;
    cleanup();
    socket.destroy();
    handlers.rotated();
  }

  function accept (): void {
    if (settled) return;
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
      fail(new ClusterMismatchError(factory.clusterLabel, false, { ...remote, cause: error }));
    } else if (handshaken) {
      // After the handshake, an error is the server refusing us (an alert such as
      // ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED); keep Node's error as the cause.
      fail(new TlsRefusedError(options.pendingFrames(), { ...remote, cause: error }));
    } else if (tlsDial && connected && isReset(error)) {
      fail(closedDuringHandshake(error));
    } else {
      fail(error);
    }
  }

  function onClose (): void {
    if (handshaken) fail(new TlsRefusedError(options.pendingFrames(), remote));
    else if (tlsDial && connected) fail(closedDuringHandshake(undefined));
    else fail(new ConnectionClosedError(undefined, remote));
  }

  /**
   * The remote dropped the connection during the TLS handshake. A plain
   * listener that recognises the ClientHello does exactly that, and so does a
   * listener at its connection cap; a handshake refusal would be an alert.
   */
  function closedDuringHandshake (cause: Error | undefined): ConnectionClosedError {
    return new ConnectionClosedError('the remote closed the connection during the TLS handshake: it probably does not speak TLS (a plain transport or 0.1.6; give it options.tls), or it refused the connection (connection limits)', { ...remote, cause });
  }

  /**
   * The remote ended its side after the handshake. Before its session ticket
   * that is a refusal; after it, the remote accepted us and is closing (a
   * transport stopping with close(), which still reads what we write until
   * our end): accepted, so the caller writes what waits and sees the end.
   */
  function onEnd (): void {
    if (ticketed && !socket.destroyed) accept();
    else onClose();
  }

  function onSession (): void {
    ticketed = true;
    // The ticket arrives while OpenSSL is still processing records; writing from
    // inside this callback corrupts the connection (measured: bad record mac).
    setImmediate(accept);
  }

  socket.on('error', onError);
  socket.on('close', onClose);
  socket.once('connect', () => { connected = true; });

  if (!factory.secure || !options.secure) {
    socket.once('connect', accept);
  } else {
    const tlsSocket = socket as TLSSocket;
    tlsSocket.once('secureConnect', () => {
      handshaken = true;
      // Our cluster's name, or its link name (tls/link.ts).
      if (!factory.acceptsAlpn(tlsSocket.alpnProtocol)) {
        fail(new ClusterMismatchError(factory.clusterLabel, tlsSocket.alpnProtocol ?? false, remote));
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
      socket.on('end', onEnd);
      if (tlsSocket.getProtocol() !== 'TLSv1.3' || tlsSocket.isSessionReused()) accept();
      else tlsSocket.once('session', onSession);
    });
  }
  return { socket, abandon };
}

function isReset (error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}
