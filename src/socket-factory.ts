/**
 * The one place that imports `net` and `tls`. The transport asks for a server
 * or a client socket and never needs to know which kind it got.
 *
 * Inbound, the listening server is always a plain `net.Server`; in TLS mode
 * each accepted socket is handed to a `tls.Server` that never listens itself.
 * That keeps Node's own handshake and client-certificate checks
 * (`tlsClientError`, `handshakeTimeout`) while letting the transport count
 * connections still in their handshake and look at the first byte before
 * deciding that a connection is TLS (plaintext migration).
 */
import { isIP, Server, Socket, connect as netConnect, createServer as netCreateServer } from 'node:net';
import type { SecureContext, SecureContextOptions, Server as TlsServer, TLSSocket } from 'node:tls';
import type { ResolvedTls } from './options';

type TlsModule = typeof import('node:tls');
let tlsModule: TlsModule | undefined;
/**
 * `node:tls` (and OpenSSL's setup with it) is loaded by the first transport
 * that uses TLS, not by require(): it is most of a plain-mode load time.
 */
function loadTls (): TlsModule {
  tlsModule ??= require('node:tls') as TlsModule;
  return tlsModule;
}

export type AnySocket = Socket | TLSSocket;

/** Where `tls.Server` reports a failed inbound handshake. */
export interface TlsServerCallbacks {
  secure (socket: TLSSocket): void;
  clientError (error: NodeJS.ErrnoException, socket: TLSSocket): void;
}

/** The ALPN name that carries a cluster name. */
function alpnName (cluster: string): string {
  return `gossipmonger/${cluster}`;
}

export class SocketFactory {
  readonly tls: ResolvedTls | undefined;
  private clientContext: SecureContext | undefined;
  private tlsServer: TlsServer | undefined;
  private readonly sessions = new Map<string, Buffer>();
  private readonly alpn: string[] | undefined;

  constructor (tls: ResolvedTls | undefined, cluster: string | undefined) {
    this.tls = tls;
    this.alpn = cluster === undefined ? undefined : [alpnName(cluster)];
    // Built once and shared: building a context per connection costs about
    // 30% of a handshake (measured on Node 20 with OpenSSL 3).
    if (tls) this.clientContext = loadTls().createSecureContext(tls.context);
  }

  get secure (): boolean {
    return this.tls !== undefined;
  }

  /** A plain TCP server; `onConnection` receives every raw accepted socket. */
  createServer (onConnection: (socket: Socket) => void): Server {
    // Plain inbound sockets never write, so Nagle cannot delay anything there;
    // a TLS server writes its handshake and the session ticket the client waits for.
    return netCreateServer({ noDelay: this.secure }, onConnection);
  }

  /**
   * The TLS half of the inbound path, created once per listening transport.
   * `upgrade()` hands a raw socket to it.
   */
  createTlsServer (handshakeTimeout: number, callbacks: TlsServerCallbacks): void {
    const tls = this.tls;
    if (!tls) throw new Error('createTlsServer needs TLS options');
    const server = loadTls().createServer({
      ...tls.context,
      requestCert: tls.requestCert,
      rejectUnauthorized: tls.rejectUnauthorized,
      handshakeTimeout,
      ...(this.alpn ? { ALPNCallback: this.alpnCallback } : {})
    });
    server.on('secureConnection', callbacks.secure);
    server.on('tlsClientError', callbacks.clientError);
    this.tlsServer = server;
  }

  /**
   * Server-side ALPN: only our cluster's name is accepted. A client that
   * offers another fails the handshake with a `no_application_protocol` alert
   * before it can send a byte. (A client that offers no ALPN at all never
   * reaches this callback; the transport checks `alpnProtocol` after the handshake.)
   */
  private readonly alpnCallback = ({ protocols }: { servername: string; protocols: string[] }): string | undefined => {
    const wanted = this.alpn![0]!;
    return protocols.includes(wanted) ? wanted : undefined;
  };

  /** The ALPN name this transport requires, if it has a cluster. */
  get expectedAlpn (): string | undefined {
    return this.alpn?.[0];
  }

  /**
   * True when `error` is OpenSSL's no_application_protocol alert while we
   * require a cluster: the other side serves, or asked for, another cluster.
   */
  isClusterRefusal (error: NodeJS.ErrnoException): boolean {
    return this.alpn !== undefined && error.code?.endsWith('NO_APPLICATION_PROTOCOL') === true;
  }

  /** Starts a TLS handshake on an accepted raw socket (data it already read included). */
  upgrade (socket: Socket): void {
    this.tlsServer!.emit('connection', socket);
  }

  /**
   * Opens a client connection. In TLS mode the remote is verified against
   * `ca` and must be named by `host` (DNS or IP SAN); `servername` (SNI) is
   * only set for non-IP hosts, so Node matches an IP literal against IP SANs.
   */
  connect (host: string, port: number, secure: boolean = this.secure, persistent = false): AnySocket {
    const tls = this.tls;
    if (!tls || !secure) {
      // One write then end needs no TCP_NODELAY (one setsockopt less per message);
      // a pooled connection writes frame after frame and does.
      return netConnect({ host, port, noDelay: persistent });
    }
    const key = `${host}:${port}`;
    const session = this.sessions.get(key);
    // TLS session tickets are kept per remote `host:port`, least recently used dropped first.
    const servername = tls.servername ?? (isIP(host) === 0 ? host : undefined);
    const { connect: tlsConnect, checkServerIdentity: defaultCheckServerIdentity } = loadTls();
    const socket = tlsConnect({
      host,
      port,
      secureContext: this.clientContext!,
      rejectUnauthorized: tls.rejectUnauthorized,
      checkServerIdentity: tls.checkServerIdentity ?? defaultCheckServerIdentity,
      ...(servername === undefined ? {} : { servername }),
      ...(session === undefined ? {} : { session }),
      ...(this.alpn ? { ALPNProtocols: this.alpn } : {})
    });
    // tls.connect ignores the noDelay option (unlike net.connect); small frames must not wait for Nagle.
    socket.setNoDelay(true);
    socket.on('session', (ticket: Buffer) => this.rememberSession(key, ticket));
    return socket;
  }

  private rememberSession (key: string, ticket: Buffer): void {
    this.sessions.delete(key);
    this.sessions.set(key, ticket);
    if (this.sessions.size > this.tls!.sessionCache) {
      this.sessions.delete(this.sessions.keys().next().value!);
    }
  }

  /**
   * New key, certificate and CA for every connection from now on, both ways.
   * A resumed session skips certificate verification, so no session may outlive
   * a rotation: cached client tickets are dropped and the server gets new
   * ticket keys, which makes every ticket it issued before unreadable.
   */
  rotate (context: SecureContextOptions): void {
    const tls = this.tls!;
    const merged: SecureContextOptions = { ...tls.context, ...context };
    const clientContext = loadTls().createSecureContext(merged);
    tls.context = merged;
    this.clientContext = clientContext;
    this.sessions.clear();
    if (this.tlsServer) {
      this.tlsServer.setSecureContext(merged);
      this.tlsServer.setTicketKeys((require('node:crypto') as typeof import('node:crypto')).randomBytes(48));
    }
  }
}

