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
import type { X509Certificate } from 'node:crypto';
import { Server, Socket, connect as netConnect, createServer as netCreateServer } from 'node:net';
import type { PeerCertificate, SecureContext, SecureContextOptions, Server as TlsServer, TLSSocket } from 'node:tls';
import { isAddress } from '../net/addresses';
import type { IdentityPolicy } from './identity';
import { linkProtocol } from './link';
import type { ResolvedTls } from '../options';
import { checkTrustMaterial, isMaterial } from './material';
import { chainFromStore, issuerNamedIn, presentedChain, trustStore, type TrustStore } from './trust';

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

/**
 * Node's client reads the server's certificate for its identity check with
 * getPeerCertificate(true): the whole chain, every certificate in it copied
 * and decoded again (0.6-0.8 ms of CPU per full handshake with Node 20's
 * OpenSSL 3, a sixth of the CPU a 50-peer mutual-TLS cluster spends forming).
 * The default check reads only the leaf's subject and subject alternative
 * names. Set on a client socket before its handshake, this answers that one
 * call with the leaf alone (getPeerCertificate(false)) and removes itself.
 */
function leafForIdentityCheck (this: TLSSocket): PeerCertificate {
  Reflect.deleteProperty(this, 'getPeerCertificate');
  return this.getPeerCertificate(false);
}

/**
 * A cached client session: the ticket, and the certificate it was verified
 * with. On a resumed TLS 1.3 session Node's `getPeerCertificate()` has no
 * subject (measured on Node 20), so the identity the session proves is the one
 * checked when it was first established, kept here with it.
 */
export interface CachedSession {
  ticket: Buffer;
  certificate: PeerCertificate;
  generation: number;
}

/** What the factory knows about one outbound TLS socket. */
interface OutboundTag {
  key: string;
  generation: number;
  /** The session this connection offered, if any. */
  offered: CachedSession | undefined;
  /** Set once the transport has checked the server (identity included). */
  verified: PeerCertificate | undefined;
  /** A ticket that arrived before the check: kept only if the check passes. */
  pending: Buffer | undefined;
  /**
   * The server certificate read for the identity check (full handshakes
   * only): the leaf alone when a CA of ours is named as its issuer (see
   * leafForIdentityCheck), otherwise the chain as Node reads it.
   */
  presented: PeerCertificate | undefined;
}

/** Where to connect and who must answer. */
export interface ConnectTarget {
  /** The host as the peer advertised it: the name checked against the certificate. */
  host: string;
  port: number;
  /** The address to open the socket to (resolved and checked); the host when unset. */
  address?: string;
  /** The gossipmonger id of the peer being sent to, for errors. */
  peerId?: string | undefined;
  /** The peer id the server must prove (authorize policy other than 'any'): part of the session cache key. */
  expectedId?: string;
}

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
  /**
   * The secure-context material in force (key, cert, ca, crl...): the options'
   * at first, then each rotation's. Owned here; nobody else's object is changed.
   */
  #context: SecureContextOptions | undefined;
  private readonly identity: IdentityPolicy;
  private clientContext: SecureContext | undefined;
  private tlsServer: TlsServer | undefined;
  private readonly sessions = new Map<string, CachedSession>();
  private readonly outbound = new WeakMap<AnySocket, OutboundTag>();
  private readonly alpn: string[] | undefined;
  /**
   * This transport can share connections (a pool, and a policy that binds a
   * connection to a remote without a function's judgement): see link.ts.
   */
  readonly linkCapable: boolean;
  /** The ALPN name of a link (with the cluster name, if any). */
  readonly linkName: string;
  /** Links are offered and accepted now: while listening (frames read on our dials need the server's deadlines). */
  #linking = false;
  private store: TrustStore | undefined;
  /** Leaf certificates read alone, and the trust store each was verified against (serverChain). */
  private readonly leafStores = new WeakMap<PeerCertificate, TrustStore>();
  /** The generation whose trust store could not be built, if any (caStore). */
  private unreadableStore = -1;
  /**
   * Bumped by every rotation. Sockets and cached sessions carry the generation
   * they were made with, so nothing made with older material is reused.
   */
  generation = 0;

  constructor (tls: ResolvedTls | undefined, cluster: string | undefined, identity: IdentityPolicy, pooled = false) {
    this.tls = tls;
    this.#context = tls?.context;
    this.identity = identity;
    this.alpn = cluster === undefined ? undefined : [alpnName(cluster)];
    this.linkCapable = tls !== undefined && pooled && identity.allowsLinks;
    this.linkName = linkProtocol(cluster);
    // Built once and shared: building a context per connection costs about
    // 30% of a handshake (measured on Node 20 with OpenSSL 3).
    if (tls) this.clientContext = loadTls().createSecureContext(tls.context);
  }

  /** The current CA and CRL, parsed on first use (only re-checks after a rotation need them). */
  get trust (): TrustStore {
    this.store ??= trustStore(this.#context!.ca, this.#context!.crl, loadTls().rootCertificates);
    return this.store;
  }

  /** The secure-context material in force now (undefined in plain mode). */
  get context (): Readonly<SecureContextOptions> | undefined {
    return this.#context;
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
    // Without requestCert a link-capable server still asks for a client
    // certificate (and never requires one): a peer that presents one the CA
    // signed for the host it advertises can be answered over its own
    // connection; anyone else is served as before, one direction only.
    const server = loadTls().createServer({
      ...this.#context,
      requestCert: tls.requestCert || this.linkCapable,
      rejectUnauthorized: tls.requestCert ? tls.rejectUnauthorized : false,
      handshakeTimeout,
      ...(this.alpn || this.linkCapable ? { ALPNCallback: this.alpnCallback } : {})
    });
    server.on('secureConnection', callbacks.secure);
    server.on('tlsClientError', callbacks.clientError);
    this.tlsServer = server;
  }

  /**
   * Server-side ALPN: a link when the client offers one, else our cluster's
   * name. A client that offers neither fails the handshake with a
   * `no_application_protocol` alert before it can send a byte. (A client that
   * offers no ALPN at all never reaches this callback; the transport checks
   * `alpnProtocol` after the handshake.) The link is picked even while this
   * transport does not share connections (closing): picking nothing would be
   * that alert, and a link the server never writes to is an ordinary
   * connection to the client.
   */
  private readonly alpnCallback = ({ protocols }: { servername: string; protocols: string[] }): string | undefined => {
    if (protocols.includes(this.linkName)) return this.linkName;
    const wanted = this.alpn?.[0];
    return wanted !== undefined && protocols.includes(wanted) ? wanted : undefined;
  };

  /** The ALPN name this transport requires, if it has a cluster. */
  get expectedAlpn (): string | undefined {
    return this.alpn?.[0];
  }

  /** What a refusal by ALPN names as expected: our cluster's name, or that we have none. */
  get clusterLabel (): string {
    return this.alpn?.[0] ?? 'no cluster';
  }

  /**
   * Whether the protocol the handshake settled on is one of ours: with a
   * cluster, its name or its link name; without one, anything (the remote
   * could only pick a name we offered).
   */
  acceptsAlpn (selected: string | false | null | undefined): boolean {
    const wanted = this.alpn?.[0];
    return wanted === undefined || selected === wanted || selected === this.linkName;
  }

  /** Offer and accept links from now on (listening), or stop (closed). */
  setLinking (on: boolean): void {
    this.#linking = on && this.linkCapable;
  }

  /** Whether links are offered and accepted now. */
  get linking (): boolean {
    return this.#linking;
  }

  /** True when this TLS connection was negotiated as a link (either direction). */
  isLink (socket: AnySocket): boolean {
    return this.#linking && (socket as TLSSocket).alpnProtocol === this.linkName;
  }

  /**
   * True when `error` is OpenSSL's no_application_protocol alert while ALPN
   * decides something for us (a cluster, or links): the other side serves,
   * or asked for, another cluster.
   */
  isClusterRefusal (error: NodeJS.ErrnoException): boolean {
    return (this.alpn !== undefined || this.linkCapable) && error.code?.endsWith('NO_APPLICATION_PROTOCOL') === true;
  }

  /**
   * Whether a client certificate names `host` by the check an outbound
   * connection to that host makes of the server's (`tls.checkServerIdentity`
   * or Node's, against `tls.servername` when set): what binds a link to a
   * `host:port` when no peer id is checked.
   */
  namesHost (certificate: PeerCertificate, host: string): boolean {
    const tls = this.tls!;
    const check = tls.checkServerIdentity ?? loadTls().checkServerIdentity;
    try {
      return check(tls.servername ?? host, certificate) === undefined;
    } catch {
      return false;
    }
  }

  /** Starts a TLS handshake on an accepted raw socket (data it already read included). */
  upgrade (socket: Socket): void {
    this.tlsServer!.emit('connection', socket);
  }

  /**
   * Opens a client connection. In TLS mode the remote is verified against
   * `ca` and must be named by `host` (DNS or IP SAN); `servername` (SNI) is
   * only set for non-IP hosts, so Node matches an IP literal against IP SANs.
   * When `address` is given the socket goes there, and the certificate is
   * still checked against `host`.
   */
  connect (target: ConnectTarget, secure: boolean = this.secure, persistent = false): AnySocket {
    const { host, port } = target;
    const address = target.address ?? host;
    const tls = this.tls;
    if (!tls || !secure) {
      // One write then end needs no TCP_NODELAY (one setsockopt less per message);
      // a pooled connection writes frame after frame and does.
      return netConnect({ host: address, port, noDelay: persistent });
    }
    // Sessions are kept per peer id and remote host:port, least recently used
    // dropped first, and only from the current generation.
    const key = `${target.expectedId ?? ''}@${host}:${port}`;
    let session = this.sessions.get(key);
    if (session !== undefined && session.generation !== this.generation) {
      this.sessions.delete(key);
      session = undefined;
    }
    const servername = tls.servername ?? (isAddress(host) ? undefined : host);
    const { connect: tlsConnect, checkServerIdentity: defaultCheckServerIdentity } = loadTls();
    const check = tls.checkServerIdentity ?? defaultCheckServerIdentity;
    const tag: OutboundTag = { key, generation: this.generation, offered: session, verified: undefined, pending: undefined, presented: undefined };
    // The leaf alone is read for the default identity check against our own
    // `ca`. A check or an authorize policy of the caller's own gets the whole
    // chain, as Node gives it.
    const leafStore = tls.checkServerIdentity === undefined && !this.identity.wantsWholeChain ? this.caStore() : undefined;
    const socket = tlsConnect({
      host: address,
      port,
      secureContext: this.clientContext!,
      rejectUnauthorized: tls.rejectUnauthorized,
      // The name checked is the advertised host (or servername), never the
      // address the socket was opened to after resolving it. The certificate
      // Node hands this check is kept, so serverCertificate() need not read it again.
      checkServerIdentity: (name, cert) => {
        let presented: PeerCertificate = cert;
        if (leafStore !== undefined) {
          // Read alone. What a rotation re-checks is the chain: the leaf and
          // the CA of ours that issued it; when none of our CAs is named as
          // its issuer, the server sent CAs of its own, read here as Node would.
          if (issuerNamedIn(cert, leafStore)) this.leafStores.set(cert, leafStore);
          else presented = socket.getPeerCertificate(true);
        }
        tag.presented = presented;
        return check(address === host ? name : servername ?? host, cert);
      },
      ...(servername === undefined ? {} : { servername }),
      ...(session === undefined ? {} : { session: session.ticket }),
      // A pooled connection offers a link first; a per-message one never does.
      ...(persistent && this.#linking ? { ALPNProtocols: [this.linkName, ...(this.alpn ?? [])] } : this.alpn ? { ALPNProtocols: this.alpn } : {})
    });
    if (leafStore !== undefined) (socket as { getPeerCertificate: (detailed?: boolean) => PeerCertificate }).getPeerCertificate = leafForIdentityCheck;
    // tls.connect ignores the noDelay option (unlike net.connect); small frames must not wait for Nagle.
    socket.setNoDelay(true);
    this.outbound.set(socket, tag);
    socket.on('session', (ticket: Buffer) => {
      if (tag.verified === undefined) tag.pending = ticket;
      else this.rememberSession(tag, ticket);
    });
    return socket;
  }

  /**
   * The server certificate an outbound TLS socket proves: the one it presented,
   * or, on a resumed session, the one checked when the session was made.
   */
  serverCertificate (socket: TLSSocket): PeerCertificate | undefined {
    // A resumed session skips Node's identity check, and with it leafForIdentityCheck.
    if (Object.prototype.hasOwnProperty.call(socket, 'getPeerCertificate')) Reflect.deleteProperty(socket, 'getPeerCertificate');
    const tag = this.outbound.get(socket);
    if (socket.isSessionReused() && tag?.offered !== undefined) return tag.offered.certificate;
    const cert = tag?.presented ?? socket.getPeerCertificate(true);
    return cert !== null && typeof cert === 'object' && cert.subject !== undefined ? cert : undefined;
  }

  /**
   * The chain behind the certificate serverCertificate() returns, leaf first,
   * as getPeerCertificate(true) gives it: what a rotation verifies against the
   * new CA and CRL. Where the leaf was read alone, a connection that made a
   * full handshake is read again now (the socket still holds its chain); a
   * resumed one holds none, and its chain is rebuilt from the `ca` its session
   * was verified against (intermediates the server sent then are not kept).
   */
  serverChain (socket: TLSSocket): X509Certificate[] {
    const certificate = this.serverCertificate(socket);
    const store = certificate === undefined ? undefined : this.leafStores.get(certificate);
    if (store === undefined) return presentedChain(certificate);
    if (!socket.isSessionReused()) {
      const whole = socket.getPeerCertificate(true);
      if (whole?.raw !== undefined) return presentedChain(whole);
    }
    return chainFromStore(certificate!, store);
  }

  /** The trust store of our own `ca`, if one is set and readable (never the public roots). */
  private caStore (): TrustStore | undefined {
    if (this.#context?.ca === undefined || this.unreadableStore === this.generation) return undefined;
    try {
      return this.trust;
    } catch {
      // Not retried for every connection (a CRL list can hold one that no CA
      // of `ca` signed, which OpenSSL ignores and our parser refuses).
      this.unreadableStore = this.generation;
      return undefined;
    }
  }

  /** The transport has checked this server: its tickets may now be cached. */
  verified (socket: TLSSocket, certificate: PeerCertificate): void {
    const tag = this.outbound.get(socket);
    if (tag === undefined) return;
    tag.verified = certificate;
    if (tag.pending !== undefined) this.rememberSession(tag, tag.pending);
    tag.pending = undefined;
  }

  private rememberSession (tag: OutboundTag, ticket: Buffer): void {
    // A ticket from a connection made before the last rotation is never cached:
    // it would resume, unverified, a session the old material accepted.
    if (tag.generation !== this.generation || tag.verified === undefined) return;
    this.sessions.delete(tag.key);
    this.sessions.set(tag.key, { ticket, certificate: tag.verified, generation: tag.generation });
    if (this.sessions.size > this.tls!.sessionCache) {
      this.sessions.delete(this.sessions.keys().next().value!);
    }
  }

  /** Sessions cached now (for tests and stats). */
  get cachedSessions (): number {
    return this.sessions.size;
  }

  /**
   * New key, certificate and CA for every connection from now on, both ways.
   * A resumed session skips certificate verification, so no session may outlive
   * a rotation: cached client tickets are dropped and the server gets new
   * ticket keys, which makes every ticket it issued before unreadable.
   */
  rotate (context: SecureContextOptions): void {
    const merged: SecureContextOptions = { ...this.#context, ...context };
    // Checked before Node reads it, so that nothing is swapped in that the re-check would read otherwise.
    if (isMaterial(merged.ca) && isMaterial(merged.crl)) checkTrustMaterial(merged.ca, merged.crl, 'setSecureContext(tlsOptions)');
    const clientContext = loadTls().createSecureContext(merged);
    const store = trustStore(merged.ca, merged.crl, loadTls().rootCertificates);
    this.#context = merged;
    this.clientContext = clientContext;
    this.store = store;
    this.generation++;
    this.sessions.clear();
    if (this.tlsServer) {
      this.tlsServer.setSecureContext(merged);
      this.tlsServer.setTicketKeys((require('node:crypto') as typeof import('node:crypto')).randomBytes(48));
    }
  }
}

