/**
 * One options type, one defaults object, validated eagerly.
 * A wrong option is a programmer's mistake: it throws at construction and
 * names the option. The caller's object is never mutated.
 */
import type { LookupAddress, LookupAllOptions } from 'node:dns';
import type { BlockList } from 'node:net';
import type { PeerCertificate, SecureContextOptions } from 'node:tls';
import type { Sender } from './message';
import { allowList, type AllowList } from './socket-factory';

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
   * Outbound sockets open or opening at once (per message and pooled). Past it
   * a frame is refused with ERR_OUTBOUND_LIMIT.
   * @default 512
   */
  maxConnections?: number;
  /** Outbound sockets open or opening at once to one destination address and port. @default 64 */
  maxPerDestination?: number;
  /**
   * keepAlive remotes held at once; at the cap the least recently used idle one
   * is closed, or the frame is refused when none is idle.
   * @default 256
   */
  maxPooledRemotes?: number;
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
   * Close a pooled outbound connection after this many ms without a frame.
   * Shorter than the server's `idleTimeout` so the server rarely closes under a writer.
   * @default 10000
   */
  idleTimeout?: number;
  /**
   * Bytes that may wait per remote (queued plus in the socket's buffer); past
   * it a frame is refused with ERR_BACKPRESSURE.
   * @default 8388608 (8 MiB)
   */
  maxQueuedBytes?: number;
}

export interface TransportOptions {
  /**
   * Host peers are told to connect to; also the bind address.
   * @default 'localhost'
   */
  host?: string;
  /**
   * Port peers are told to connect to; also the bind port. 0 picks a free port.
   * @default 9742
   */
  port?: number;
  /** Node TLS options; when set, everything sent and served is TLS. @default undefined (plain TCP) */
  tls?: TlsOptions;
  /**
   * Largest frame in bytes (without its terminator), inbound and outbound. `Infinity` turns the limit off.
   * @default 1048576 (1 MiB)
   */
  maxFrameSize?: number;
  /**
   * Reuse one outbound connection per remote `host:port`.
   * @default false
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
   * Close an inbound connection that sends no byte for this many ms.
   * @default 30000
   */
  idleTimeout?: number;
  /**
   * Inbound connections held at once; at the cap the longest-idle one is closed.
   * @default 256
   */
  maxConnections?: number;
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

export const DEFAULTS = Object.freeze({
  host: 'localhost',
  port: 9742,
  maxFrameSize: 1024 * 1024,
  keepAlive: false,
  connectTimeout: 5000,
  handshakeTimeout: 5000,
  idleTimeout: 30000,
  maxConnections: 256,
  keepAliveIdleTimeout: 10000,
  keepAliveMaxQueuedBytes: 8 * 1024 * 1024,
  tlsMinVersion: 'TLSv1.2' as const,
  tlsRequestCert: false,
  tlsRejectUnauthorized: true,
  tlsAuthorize: 'any' as const,
  tlsSessionCache: 256,
  outboundMaxConnections: 512,
  outboundMaxPerDestination: 64,
  outboundMaxPooledRemotes: 256
});

/** Options after validation and defaults. */
export interface ResolvedOptions {
  host: string;
  port: number;
  tls: ResolvedTls | undefined;
  maxFrameSize: number;
  keepAlive: { idleTimeout: number; maxQueuedBytes: number } | undefined;
  connectTimeout: number;
  handshakeTimeout: number;
  idleTimeout: number;
  maxConnections: number;
  cluster: string | undefined;
  allowFrom: AllowList | undefined;
  outbound: {
    allow: AllowList | undefined;
    lookup: LookupFunction | undefined;
    maxConnections: number;
    maxPerDestination: number;
    maxPooledRemotes: number;
  };
}

export interface ResolvedTls {
  /** Secure-context material only (key, cert, ca, ciphers...). */
  context: SecureContextOptions;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  authorize: 'any' | 'sender-id' | AuthorizeFunction;
  servername: string | undefined;
  checkServerIdentity: TlsOptions['checkServerIdentity'];
  sessionCache: number;
  plaintext: { accept: boolean; send: boolean; until: number | undefined };
}

/** Keys of TlsOptions that are ours, not secure-context material. */
export const TLS_OWN_KEYS: ReadonlySet<string> = new Set(['requestCert', 'rejectUnauthorized', 'authorize', 'servername', 'checkServerIdentity', 'sessionCache', 'plaintext']);
const TLS_VERSIONS = new Set(['TLSv1.2', 'TLSv1.3']);
const TOP_KEYS = new Set(['host', 'port', 'tls', 'maxFrameSize', 'keepAlive', 'connectTimeout', 'handshakeTimeout', 'idleTimeout', 'maxConnections', 'cluster', 'allowFrom', 'outbound']);
const OUTBOUND_KEYS = new Set(['allow', 'lookup', 'maxConnections', 'maxPerDestination', 'maxPooledRemotes']);

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInteger (name: string, value: unknown, fallback: number, allowInfinity = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`options.${name} must be a positive integer${allowInfinity ? ' or Infinity' : ''}; got ${describe(value)}`);
  }
  if (allowInfinity && value === Infinity) return value;
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`options.${name} must be a positive integer${allowInfinity ? ' or Infinity' : ''}; got ${describe(value)}`);
  }
  return value;
}

function nonNegativeInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`options.${name} must be a non-negative integer; got ${describe(value)}`);
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`options.${name} must be a non-negative integer; got ${describe(value)}`);
  return value;
}

function optionalBoolean (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`options.${name} must be a boolean; got ${describe(value)}`);
  return value;
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Validates `port` wherever it appears (constructor and listen). */
export function validatePort (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${name} must be an integer from 0 to 65535; got ${describe(value)}`);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new RangeError(`${name} must be an integer from 0 to 65535; got ${describe(value)}`);
  return value;
}

/** Validates `host` wherever it appears (constructor and listen). */
export function validateHost (name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string; got ${describe(value)}`);
  return value;
}

function resolveTls (value: unknown, cluster: string | undefined): ResolvedTls | undefined {
  if (value === undefined) {
    if (cluster !== undefined) throw new TypeError('options.cluster needs options.tls: the cluster name travels in the TLS handshake');
    return undefined;
  }
  if (!isPlainObject(value)) throw new TypeError(`options.tls must be an object of Node TLS options; got ${describe(value)}`);
  const context: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (!TLS_OWN_KEYS.has(key)) context[key] = value[key];
  }
  if (context.minVersion === undefined) context.minVersion = DEFAULTS.tlsMinVersion;
  else if (typeof context.minVersion !== 'string' || !TLS_VERSIONS.has(context.minVersion)) {
    throw new RangeError(`options.tls.minVersion must be 'TLSv1.2' or 'TLSv1.3'; got ${describe(context.minVersion)}`);
  }
  if ((context.cert === undefined) !== (context.key === undefined)) {
    throw new TypeError('options.tls.key and options.tls.cert go together: give both or neither');
  }
  const requestCert = optionalBoolean('tls.requestCert', value.requestCert, DEFAULTS.tlsRequestCert);
  const rejectUnauthorized = optionalBoolean('tls.rejectUnauthorized', value.rejectUnauthorized, DEFAULTS.tlsRejectUnauthorized);
  const authorize = value.authorize ?? DEFAULTS.tlsAuthorize;
  if (authorize !== 'any' && authorize !== 'sender-id' && typeof authorize !== 'function') {
    throw new TypeError(`options.tls.authorize must be 'any', 'sender-id' or a function; got ${describe(authorize)}`);
  }
  if (authorize !== 'any' && !requestCert) {
    throw new TypeError('options.tls.authorize other than \'any\' needs options.tls.requestCert: true (no client certificate, no identity to check)');
  }
  if (value.servername !== undefined && (typeof value.servername !== 'string' || value.servername.length === 0)) {
    throw new TypeError(`options.tls.servername must be a non-empty string; got ${describe(value.servername)}`);
  }
  if (value.checkServerIdentity !== undefined && typeof value.checkServerIdentity !== 'function') {
    throw new TypeError(`options.tls.checkServerIdentity must be a function; got ${describe(value.checkServerIdentity)}`);
  }
  return {
    context: context as SecureContextOptions,
    requestCert,
    rejectUnauthorized,
    authorize: authorize as ResolvedTls['authorize'],
    servername: value.servername as string | undefined,
    checkServerIdentity: value.checkServerIdentity as TlsOptions['checkServerIdentity'],
    sessionCache: nonNegativeInteger('tls.sessionCache', value.sessionCache, DEFAULTS.tlsSessionCache),
    plaintext: resolvePlaintext(value.plaintext)
  };
}

function resolvePlaintext (value: unknown): ResolvedTls['plaintext'] {
  if (value === undefined) return { accept: false, send: false, until: undefined };
  if (!isPlainObject(value)) throw new TypeError(`options.tls.plaintext must be an object; got ${describe(value)}`);
  for (const key of Object.keys(value)) {
    if (key !== 'accept' && key !== 'send' && key !== 'until') throw new TypeError(`options.tls.plaintext.${key} is not an option`);
  }
  const accept = optionalBoolean('tls.plaintext.accept', value.accept, false);
  const send = optionalBoolean('tls.plaintext.send', value.send, false);
  let until: number | undefined;
  if (value.until !== undefined) {
    const raw = value.until;
    until = raw instanceof Date ? raw.getTime() : typeof raw === 'number' || typeof raw === 'string' ? new Date(raw).getTime() : NaN;
    if (Number.isNaN(until)) throw new TypeError(`options.tls.plaintext.until must be a Date, a timestamp or a date string; got ${describe(raw)}`);
  }
  return { accept, send, until };
}

function resolveKeepAlive (value: unknown): ResolvedOptions['keepAlive'] {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { idleTimeout: DEFAULTS.keepAliveIdleTimeout, maxQueuedBytes: DEFAULTS.keepAliveMaxQueuedBytes };
  if (!isPlainObject(value)) throw new TypeError(`options.keepAlive must be a boolean or an object; got ${describe(value)}`);
  for (const key of Object.keys(value)) {
    if (key !== 'idleTimeout' && key !== 'maxQueuedBytes') throw new TypeError(`options.keepAlive.${key} is not an option`);
  }
  return {
    idleTimeout: positiveInteger('keepAlive.idleTimeout', value.idleTimeout, DEFAULTS.keepAliveIdleTimeout),
    maxQueuedBytes: positiveInteger('keepAlive.maxQueuedBytes', value.maxQueuedBytes, DEFAULTS.keepAliveMaxQueuedBytes)
  };
}

function resolveOutbound (value: unknown): ResolvedOptions['outbound'] {
  if (value === undefined) value = {};
  if (!isPlainObject(value)) throw new TypeError(`options.outbound must be an object; got ${describe(value)}`);
  for (const key of Object.keys(value)) {
    if (!OUTBOUND_KEYS.has(key)) throw new TypeError(`options.outbound.${key} is not an option`);
  }
  if (value.lookup !== undefined && typeof value.lookup !== 'function') {
    throw new TypeError(`options.outbound.lookup must be a function like dns.lookup; got ${describe(value.lookup)}`);
  }
  return {
    allow: allowList('options.outbound.allow', value.allow),
    lookup: value.lookup as LookupFunction | undefined,
    maxConnections: positiveInteger('outbound.maxConnections', value.maxConnections, DEFAULTS.outboundMaxConnections),
    maxPerDestination: positiveInteger('outbound.maxPerDestination', value.maxPerDestination, DEFAULTS.outboundMaxPerDestination),
    maxPooledRemotes: positiveInteger('outbound.maxPooledRemotes', value.maxPooledRemotes, DEFAULTS.outboundMaxPooledRemotes)
  };
}

/** Validates `options` and fills in defaults. Throws TypeError/RangeError naming the option. */
export function resolveOptions (options: unknown): ResolvedOptions {
  if (options === undefined || options === null) options = {};
  if (!isPlainObject(options)) throw new TypeError(`options must be an object; got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!TOP_KEYS.has(key)) throw new TypeError(`options.${key} is not an option of TcpTransport`);
  }
  const cluster = options.cluster;
  if (cluster !== undefined) {
    if (typeof cluster !== 'string' || cluster.length === 0) throw new TypeError(`options.cluster must be a non-empty string; got ${describe(cluster)}`);
    if (Buffer.byteLength(cluster) > 200) throw new RangeError('options.cluster must be at most 200 bytes (it is carried in a TLS ALPN name)');
  }
  return {
    host: validateHost('options.host', options.host, DEFAULTS.host),
    port: validatePort('options.port', options.port, DEFAULTS.port),
    tls: resolveTls(options.tls, cluster as string | undefined),
    maxFrameSize: positiveInteger('maxFrameSize', options.maxFrameSize, DEFAULTS.maxFrameSize, true),
    keepAlive: resolveKeepAlive(options.keepAlive),
    connectTimeout: positiveInteger('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout),
    handshakeTimeout: positiveInteger('handshakeTimeout', options.handshakeTimeout, DEFAULTS.handshakeTimeout),
    idleTimeout: positiveInteger('idleTimeout', options.idleTimeout, DEFAULTS.idleTimeout),
    maxConnections: positiveInteger('maxConnections', options.maxConnections, DEFAULTS.maxConnections),
    cluster: cluster as string | undefined,
    allowFrom: allowList('options.allowFrom', options.allowFrom),
    outbound: resolveOutbound(options.outbound)
  };
}
