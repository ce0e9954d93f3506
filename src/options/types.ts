/**
 * The public option types, with their documented defaults. Values are in
 * defaults.ts; validation in validate.ts.
 */
import type { LookupAddress, LookupAllOptions } from 'node:dns';
import type { BlockList } from 'node:net';
import type { PeerCertificate, SecureContextOptions } from 'node:tls';
import type { Sender } from '../wire/message';
/** Which way a function `tls.authorize` policy is being asked about. */
export interface AuthorizeContext {
  /**
   * `'inbound'`: may this client certificate send as `peer` (the message's sender)?
   * `'outbound'`: may this server certificate receive for `peer` (the remote peer
   * we are sending to)? Asked once per connection, before anything is written.
   */
  direction: 'inbound' | 'outbound';
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}

/**
 * Decides whether a certificate may speak for a peer; see `tls.authorize`.
 * Asked inbound for every message and outbound for every connection.
 */
export type AuthorizeFunction = (peer: Sender, certificate: PeerCertificate | undefined, context: AuthorizeContext) => boolean;

/** `dns.lookup` with `{ all: true }`, or a replacement with the same shape. */
export type LookupFunction = (
  hostname: string,
  options: LookupAllOptions,
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void
) => void;

/** Networks as CIDR strings (`'10.0.0.0/8'`, `'fd00::/8'`, a bare address) or a `net.BlockList` of allowed networks. */
export type NetworkList = string | string[] | BlockList;

export interface OutboundOptions {
  /**
   * Networks outbound connections may go to. A host name is resolved first
   * (with `lookup`) and the socket is opened to the address that was checked,
   * so DNS cannot change it in between. A refused destination opens no socket.
   * @default undefined (anywhere)
   */
  allow?: NetworkList;
  /** Resolves host names for `allow`. @default dns.lookup */
  lookup?: LookupFunction;
  /**
   * Outbound sockets open or opening at once (per message and pooled, name
   * resolutions included). At it, a destination holding fewer takes a slot
   * back from one that never completed an exchange (a tarpit), else from the
   * one holding the most; when neither is fair, the frame is refused with
   * ERR_OUTBOUND_LIMIT. A name resolution has `connectTimeout` to answer.
   * @default 512
   */
  maxConnections?: number;
  /** Outbound sockets open or opening at once to one destination address and port. @default 256 */
  maxPerDestination?: number;
  /**
   * keepAlive remotes held at once; at the cap the least recently used idle one
   * is closed, or a remote whose connection never opened (a tarpit) gives its
   * place up, or the frame is refused when there is neither.
   * @default 256
   */
  maxPooledRemotes?: number;
  /**
   * Bytes of outbound frames this process may hold before the kernel has them,
   * over every destination: pooled queues (what `keepAlive.maxQueuedBytes`
   * bounds per remote) and per-message frames waiting for their connection.
   * A frame that does not fit is refused with ERR_OUTBOUND_LIMIT (`limit`
   * 'maxQueuedBytes'), counted, never queued; first, a pooled remote whose
   * connection never opened, or the one holding the most, gives way
   * (its oldest queued frames are dropped and reported).
   * @default 67108864 (64 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * Outbound TLS handshakes in progress at once (pooled and per message).
   * More dials wait for one to finish, first come first served, before they
   * open a socket; `connectTimeout` starts when a dial does. A handshake
   * holds its place a quarter of `connectTimeout` at most. `Infinity` turns
   * the bound off.
   * @default 1
   */
  maxHandshakes?: number;
}

export interface TlsOptions extends SecureContextOptions {
  /**
   * Mutual TLS: inbound peers must present a certificate signed by `ca`.
   * @default false
   */
  requestCert?: boolean;
  /**
   * Verify the remote's certificate. Turning this off lets anyone on the path
   * read and forge every message: it exists for debugging only.
   * @default true
   */
  rejectUnauthorized?: boolean;
  /**
   * Which certificate may speak for which `sender.id`: `'any'` (any certificate
   * the CA signed), `'sender-id'` (subject CN or a SAN URI equals `sender.id`),
   * or a function. `'sender-id'` and functions need `requestCert`.
   * @default 'any'
   */
  authorize?: 'any' | 'sender-id' | AuthorizeFunction;
  /** SNI and name check override for outbound connections. @default the remote host, unless it is an IP literal */
  servername?: string;
  /** Replaces Node's server identity check for outbound connections. @default tls.checkServerIdentity */
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
  /**
   * Lowest TLS version offered or accepted.
   * @default 'TLSv1.2'
   */
  minVersion?: SecureContextOptions['minVersion'];
  /**
   * Remotes whose TLS session tickets are kept for resumption (least recently
   * used dropped first). A resumed session skips the certificate check, and is
   * about 4x cheaper than a full handshake; 0 turns resumption off.
   * @default 256
   */
  sessionCache?: number;
  /**
   * Rolling migration from a plaintext cluster. `accept`: take plaintext
   * connections on the TLS port too (told apart by their first byte); `send`:
   * keep sending plaintext; `until`: after this instant plaintext is refused
   * whatever `accept` says.
   * @default undefined (TLS only, both ways)
   */
  plaintext?: PlaintextMigration;
}

export interface PlaintextMigration {
  /** @default false */
  accept?: boolean;
  /** @default false */
  send?: boolean;
  /** @default undefined (no deadline) */
  until?: Date | number | string;
}

export interface KeepAliveOptions {
  /**
   * Close a pooled outbound connection after this many ms without a frame
   * (either way, on a shared connection). Well above the time a pair of
   * peers takes to talk again (gossip interval times cluster size: 100 s for
   * 100 peers at gossipmonger's 1 s), and shorter than the server's
   * `idleTimeout`, so the client closes first.
   * @default 300000 (5 minutes)
   */
  idleTimeout?: number;
  /**
   * Bytes that may wait per remote (queued plus in the socket's buffer); past
   * it a frame is refused with ERR_BACKPRESSURE.
   * @default 8388608 (8 MiB)
   */
  maxQueuedBytes?: number;
}

/**
 * Proven membership (README, "Proven membership"): an id reaches gossipmonger
 * only once this node has proof of it; the bounds below limit the proof work
 * a remote can cause by naming ids.
 */
export interface MembershipOptions {
  /**
   * Proof attempts one introducer (a sender id under a certificate policy,
   * else a source address) may have under way at once; ids it names past
   * that are held back and counted as refused until a later message names
   * them again.
   * @default 16
   */
  pendingPerIntroducer?: number;
  /**
   * Proof attempts one introducer may begin per second, in bursts of
   * `pendingPerIntroducer`.
   * @default 32
   */
  proofsPerSecond?: number;
  /**
   * A proof attempt not settled within this many ms fails; the same id at the
   * same address is then not tried again for 60 s (it is still proven by
   * contacting this node, or by its certificate).
   * @default 10000
   */
  proofTimeout?: number;
  /**
   * Without identity (plain, TLS with 'any'), distinct ids one source (an
   * IPv4 address, an IPv6 /64) may prove by contact over the node's lifetime:
   * a frame from a new id past it is held back. Peers behind one NAT, or a
   * cluster on one host, share a source: raise it to cover them.
   * @default 64
   */
  idsPerSource?: number;
}

export interface TransportOptions {
  /**
   * Host peers are told to connect to; also the bind address.
   * @default 'localhost'
   */
  host?: string;
  /**
   * Port peers are told to connect to; also the bind port. 0 picks a free port.
   * A decimal string (`'9742'`, typically from an environment variable) is
   * accepted and turned into a number, as 0.1.6 accepted it.
   * @default 9742
   */
  port?: number | string;
  /** Node TLS options; when set, everything sent and served is TLS. @default undefined (plain TCP) */
  tls?: TlsOptions;
  /**
   * Largest frame in bytes (without its terminator), inbound and outbound. `Infinity` turns the limit off.
   * @default 1048576 (1 MiB)
   */
  maxFrameSize?: number;
  /**
   * Reuse one outbound connection per remote `host:port`. On by default with
   * `tls` (no 0.1.6 peer speaks TLS, so nothing needs a handshake per
   * message); `false` then gives one connection per message. Plaintext sent
   * during a migration (`tls.plaintext.send`) is always one connection per
   * message, as a 0.1.6 receiver needs.
   * @default false without `tls`, true with `tls`
   */
  keepAlive?: boolean | KeepAliveOptions;
  /**
   * Outbound connect plus TLS handshake, in ms.
   * @default 5000
   */
  connectTimeout?: number;
  /**
   * Inbound TLS handshake, in ms.
   * @default 5000
   */
  handshakeTimeout?: number;
  /**
   * Close an inbound connection that carries no frame (either way, on a
   * shared connection) for this many ms. Until it has delivered a frame, a
   * connection gets no more than `frameTimeout`.
   * @default 360000 (6 minutes)
   */
  idleTimeout?: number;
  /**
   * Inbound connections held at once, TLS handshakes included. At the cap the
   * connection that has proven least is closed to make room: one that has
   * delivered no frame (in mutual TLS: not yet authenticated) before one that
   * has, of the source holding the most of them (IPv6 sources grouped by
   * /48, then /56, then /64), the one held longest; among connections that
   * delivered frames, the longest idle, else the oldest unfinished frame.
   * From 3/4 of it held, the per-source limits apply (contention).
   * @default 256
   */
  maxConnections?: number;
  /**
   * Inbound TLS handshakes in progress at once. More wait for one to finish,
   * first come first served, but never longer than a quarter of
   * `handshakeTimeout`. `Infinity` turns the bound off.
   * @default 32
   */
  maxHandshakes?: number;
  /**
   * Close an inbound connection whose frame is not complete this many ms after
   * its first byte. Bytes do not re-arm it, so a peer dripping a frame cannot
   * hold a connection for longer. The default lets a 1 MiB frame through at
   * 512 kbit/s (16.4 s) with room to spare.
   * @default 20000
   */
  frameTimeout?: number;
  /**
   * Under contention only, the inbound connections one source (an IPv4
   * address, an IPv6 /64) keeps: the larger of this and an equal share of
   * `maxConnections` among the sources holding connections; more are refused
   * before any byte is read or any TLS handshake starts. The node is
   * contended once it holds 3/4 of `maxConnections`, or (TLS) once 1/8 of
   * `maxConnections` connections are in their handshake from more than one
   * source, and for one second after. While the node has room, a source may
   * hold more: peers sharing an address (one host, NAT) need no tuning.
   * @default 32
   */
  maxConnectionsPerSource?: number;
  /**
   * Under contention only (see `maxConnectionsPerSource`), new inbound
   * connections per second one source may open: a token bucket holding one
   * second's worth, drawn on by every connection contended or not; when it
   * is empty under contention, new connections are refused before any TLS
   * handshake. While the node has room, a source is not rate-capped.
   * @default 50
   */
  connectionsPerSecondPerSource?: number;
  /**
   * Distinct peer ids (senders and digest entries) the transport passes on to
   * gossipmonger, which keeps every peer it hears of forever. Past it, messages
   * from new senders and digest entries naming new peers are dropped and
   * counted (ERR_PEER_LIMIT). `Infinity` turns the cap off.
   * @default 2048
   */
  maxPeers?: number;
  /**
   * Pass a peer id on to gossipmonger only once it is proven: by a
   * certificate under `tls.authorize` 'sender-id' (or a function), else by
   * contact (a frame from that id on a connection of its own). Digest entries
   * naming other ids are held back while the transport tries to prove them.
   * `false` passes every id on (bounded by maxPeers only): for a transport
   * used without gossipmonger.
   * @default {} (on, with the defaults of MembershipOptions)
   */
  membership?: false | MembershipOptions;
  /**
   * Cluster name carried in TLS ALPN: peers of another cluster fail the handshake.
   * @default undefined (no ALPN)
   */
  cluster?: string;
  /**
   * Networks inbound connections may come from; others are closed on accept,
   * before any byte is read or any handshake starts.
   * @default undefined (anywhere)
   */
  allowFrom?: NetworkList;
  /** Where outbound connections may go, and how many may be open. */
  outbound?: OutboundOptions;
}

export interface CertificateFiles {
  /** Path of the PEM private key. */
  key: string;
  /** Path of the PEM certificate (chain: leaf first). */
  cert: string;
  /** Path of the PEM CA bundle peers are verified against. */
  ca: string;
  /** Path of a PEM CRL (optional). */
  crl?: string;
  /**
   * The id the certificate must name under `tls.authorize: 'sender-id'`.
   * @default the id this node last sent as, else the current certificate's CN
   */
  id?: string;
  /** Wait this long after the last change event before reading. @default 200 (ms) */
  debounce?: number;
  /** Poll sizes and mtimes this often, in case a change event is missed. @default 5000 (ms) */
  interval?: number;
  /** Use fs.watch change events (polling alone when false). @default true */
  watch?: boolean;
  /** Reads again (`debounce` apart) of an unreadable set, or of one that fails validation, before ERR_CERT_RELOAD. @default 5 */
  retries?: number;
}

/** A handle on a running watch; the transport's close() stops it too. */
export interface CertificateWatch {
  /** Reads and validates the files now (what a change event does). Resolves to true if the set was swapped in. */
  reload (): Promise<boolean>;
  /** File sets swapped in so far (a rotation step has reached this node when it grows). */
  readonly applied: number;
  close (): void;
}
