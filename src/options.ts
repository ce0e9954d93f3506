/**
 * One options type, one defaults object, validated eagerly.
 * A wrong option is a programmer's mistake: it throws at construction and
 * names the option. The caller's object is never mutated.
 */
import type { LookupAddress, LookupAllOptions } from 'node:dns';
import type { BlockList } from 'node:net';
import type { PeerCertificate, SecureContextOptions } from 'node:tls';
import type { CertificateFiles } from './cert-files';
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
  /** Outbound sockets open or opening at once to one destination address and port. @default 256 */
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
   * Close an inbound connection that sends no byte for this many ms.
   * @default 30000
   */
  idleTimeout?: number;
  /**
   * Inbound connections held at once, TLS handshakes included. At the cap one
   * connection of the source holding the most is closed to make room: its
   * longest-idle one, else its oldest unfinished frame.
   * @default 256
   */
  maxConnections?: number;
  /**
   * Close an inbound connection whose frame is not complete this many ms after
   * its first byte. Bytes do not re-arm it, so a peer dripping a frame cannot
   * hold a connection for longer. The default lets a 1 MiB frame through at
   * 512 kbit/s (16.4 s) with room to spare.
   * @default 20000
   */
  frameTimeout?: number;
  /**
   * Inbound connections one source (an IPv4 address, an IPv6 /64) may hold at
   * once; more are refused before any TLS handshake. Raise it when many peers
   * share one address (NAT).
   * @default 32
   */
  maxConnectionsPerSource?: number;
  /**
   * New inbound connections per second one source may open (a token bucket
   * holding one second's worth); more are refused before any TLS handshake.
   * Raise it when many peers share one address (NAT).
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
  /** keepAlive when `tls` is set and `keepAlive` is not given. */
  keepAliveWithTls: true,
  connectTimeout: 5000,
  handshakeTimeout: 5000,
  idleTimeout: 30000,
  maxConnections: 256,
  frameTimeout: 20000,
  maxConnectionsPerSource: 32,
  connectionsPerSecondPerSource: 50,
  maxPeers: 2048,
  keepAliveIdleTimeout: 10000,
  keepAliveMaxQueuedBytes: 8 * 1024 * 1024,
  tlsMinVersion: 'TLSv1.2' as const,
  tlsRequestCert: false,
  tlsRejectUnauthorized: true,
  tlsAuthorize: 'any' as const,
  tlsSessionCache: 256,
  outboundMaxConnections: 512,
  outboundMaxPerDestination: 256,
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
  frameTimeout: number;
  maxConnectionsPerSource: number;
  connectionsPerSecondPerSource: number;
  maxPeers: number;
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

/**
 * Option names, checked so that a misspelt option throws instead of being
 * ignored. Each list is a `Record` over the keys of its options type, so the
 * compiler refuses a new option that is missing here.
 */
const TOP_OPTION_NAMES: Record<keyof TransportOptions, true> = {
  host: true, port: true, tls: true, maxFrameSize: true, keepAlive: true, connectTimeout: true,
  handshakeTimeout: true, idleTimeout: true, maxConnections: true, frameTimeout: true, maxConnectionsPerSource: true,
  connectionsPerSecondPerSource: true, maxPeers: true, cluster: true, allowFrom: true, outbound: true
};

/**
 * The keys of TlsOptions that are ours, not secure-context material: our own,
 * and the few tls.connect/createServer options that make sense for a peer.
 */
const TLS_OWN_NAMES: Record<Exclude<keyof TlsOptions, keyof SecureContextOptions>, true> = {
  requestCert: true, rejectUnauthorized: true, authorize: true, servername: true, checkServerIdentity: true, sessionCache: true, plaintext: true
};

/**
 * Node's secure-context options (tls.createSecureContext), passed through as
 * they are. ALPNCallback is left out: the transport sets it for `cluster`.
 * https://nodejs.org/docs/latest-v20.x/api/tls.html#tlscreatesecurecontextoptions
 */
const SECURE_CONTEXT_NAMES: Record<Exclude<keyof SecureContextOptions, 'ALPNCallback'>, true> = {
  allowPartialTrustChain: true, ca: true, cert: true, sigalgs: true, ciphers: true, clientCertEngine: true, crl: true,
  dhparam: true, ecdhCurve: true, honorCipherOrder: true, key: true, privateKeyEngine: true, privateKeyIdentifier: true,
  maxVersion: true, minVersion: true, passphrase: true, pfx: true, secureOptions: true, secureProtocol: true,
  sessionIdContext: true, ticketKeys: true, sessionTimeout: true
};

const KEEP_ALIVE_NAMES: Record<keyof KeepAliveOptions, true> = { idleTimeout: true, maxQueuedBytes: true };
const OUTBOUND_NAMES: Record<keyof OutboundOptions, true> = { allow: true, lookup: true, maxConnections: true, maxPerDestination: true, maxPooledRemotes: true };
const PLAINTEXT_NAMES: Record<keyof PlaintextMigration, true> = { accept: true, send: true, until: true };

/** Keys of TlsOptions that are ours, not secure-context material. */
export const TLS_OWN_KEYS: ReadonlySet<string> = new Set(Object.keys(TLS_OWN_NAMES));
const SECURE_CONTEXT_KEYS: ReadonlySet<string> = new Set(Object.keys(SECURE_CONTEXT_NAMES));
const TLS_KEYS: ReadonlySet<string> = new Set([...TLS_OWN_KEYS, ...SECURE_CONTEXT_KEYS]);
const TLS_VERSIONS = new Set(['TLSv1.2', 'TLSv1.3']);
const OUTBOUND_KEYS: ReadonlySet<string> = new Set(Object.keys(OUTBOUND_NAMES));
const TOP_KEYS: ReadonlySet<string> = new Set(Object.keys(TOP_OPTION_NAMES));

/** Node tls.connect/createServer options the transport sets itself or does not support, with why. */
const TLS_UNSUPPORTED: Readonly<Record<string, string>> = {
  ALPNCallback: 'the transport sets it; use options.cluster',
  ALPNProtocols: 'the transport sets it; use options.cluster',
  SNICallback: 'one certificate serves every peer; rotate it with setSecureContext()',
  session: 'the transport keeps TLS sessions itself (tls.sessionCache)',
  host: 'set options.host', port: 'set options.port',
  handshakeTimeout: 'it is a top-level option: options.handshakeTimeout'
};

/** Optimal string alignment distance (Levenshtein with adjacent swaps), case-insensitive. */
function editDistance (a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `name`, if it is a near miss: a different case
 * (`requestcert`), British spelling (`authorise`), a typo or a swap. Close
 * means at most 1 edit for short names, 2 from 6 characters, 3 from 12.
 */
export function nearestName (name: string, known: Iterable<string>): string | undefined {
  const budget = name.length < 6 ? 1 : name.length < 12 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= budget ? best : undefined;
}

/** For setSecureContext(): secure-context options only, by name. */
export function checkSecureContextNames (path: string, value: Record<string, unknown>): void {
  for (const key of Object.keys(value)) {
    if (TLS_OWN_KEYS.has(key)) throw new TypeError(`${path}.${key} cannot change after construction`);
  }
  checkNames(path, value, SECURE_CONTEXT_KEYS, 'a secure-context option', TLS_UNSUPPORTED);
}

/** Throws a TypeError for the first key of `value` not in `known`, suggesting the nearest. */
function checkNames (path: string, value: Record<string, unknown>, known: ReadonlySet<string>, what: string, why: Readonly<Record<string, string>> = {}): void {
  for (const key of Object.keys(value)) {
    if (known.has(key)) continue;
    const reason = Object.hasOwn(why, key) ? why[key] : undefined;
    if (reason !== undefined) throw new TypeError(`${path}.${key} is not supported: ${reason}`);
    const near = nearestName(key, known);
    throw new TypeError(`${path}.${key} is not ${what}${near === undefined ? '' : `; did you mean ${path}.${near}?`}`);
  }
}

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

/**
 * Validates `port` wherever it appears (constructor and listen). A decimal
 * string is accepted and turned into a number: 0.1.6 accepted one.
 */
export function validatePort (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'string' && /^[0-9]{1,5}$/.test(value)) value = Number(value);
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${name} must be an integer from 0 to 65535; got ${describe(value)}`);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new RangeError(`${name} must be an integer from 0 to 65535; got ${describe(value)}`);
  return value;
}

/**
 * Validates `host` wherever it appears (constructor and listen). An empty
 * string means the default, as in 0.1.6 (`options.host || 'localhost'`).
 */
export function validateHost (name: string, value: unknown, fallback: string): string {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string; got ${describe(value)}`);
  return value;
}

function resolveTls (value: unknown, cluster: string | undefined): ResolvedTls | undefined {
  if (value === undefined) {
    if (cluster !== undefined) throw new TypeError('options.cluster needs options.tls: the cluster name travels in the TLS handshake');
    return undefined;
  }
  if (!isPlainObject(value)) throw new TypeError(`options.tls must be an object of Node TLS options; got ${describe(value)}`);
  checkNames('options.tls', value, TLS_KEYS, 'a TLS option of TcpTransport (Node secure-context options and the tls.* options in the README)', TLS_UNSUPPORTED);
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
  checkNames('options.tls.plaintext', value, new Set(Object.keys(PLAINTEXT_NAMES)), 'an option');
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

function resolveKeepAlive (value: unknown, tls: boolean): ResolvedOptions['keepAlive'] {
  if (value === undefined) value = tls ? DEFAULTS.keepAliveWithTls : DEFAULTS.keepAlive;
  if (value === false) return undefined;
  if (value === true) return { idleTimeout: DEFAULTS.keepAliveIdleTimeout, maxQueuedBytes: DEFAULTS.keepAliveMaxQueuedBytes };
  if (!isPlainObject(value)) throw new TypeError(`options.keepAlive must be a boolean or an object; got ${describe(value)}`);
  checkNames('options.keepAlive', value, new Set(Object.keys(KEEP_ALIVE_NAMES)), 'an option');
  return {
    idleTimeout: positiveInteger('keepAlive.idleTimeout', value.idleTimeout, DEFAULTS.keepAliveIdleTimeout),
    maxQueuedBytes: positiveInteger('keepAlive.maxQueuedBytes', value.maxQueuedBytes, DEFAULTS.keepAliveMaxQueuedBytes)
  };
}

function resolveOutbound (value: unknown): ResolvedOptions['outbound'] {
  if (value === undefined) value = {};
  if (!isPlainObject(value)) throw new TypeError(`options.outbound must be an object; got ${describe(value)}`);
  checkNames('options.outbound', value, OUTBOUND_KEYS, 'an option');
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
  checkNames('options', options, TOP_KEYS, 'an option of TcpTransport');
  const cluster = options.cluster;
  if (cluster !== undefined) {
    if (typeof cluster !== 'string' || cluster.length === 0) throw new TypeError(`options.cluster must be a non-empty string; got ${describe(cluster)}`);
    if (Buffer.byteLength(cluster) > 200) throw new RangeError('options.cluster must be at most 200 bytes (it is carried in a TLS ALPN name)');
  }
  const tls = resolveTls(options.tls, cluster as string | undefined);
  return {
    host: validateHost('options.host', options.host, DEFAULTS.host),
    port: validatePort('options.port', options.port, DEFAULTS.port),
    tls,
    maxFrameSize: positiveInteger('maxFrameSize', options.maxFrameSize, DEFAULTS.maxFrameSize, true),
    keepAlive: resolveKeepAlive(options.keepAlive, tls !== undefined),
    connectTimeout: positiveInteger('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout),
    handshakeTimeout: positiveInteger('handshakeTimeout', options.handshakeTimeout, DEFAULTS.handshakeTimeout),
    idleTimeout: positiveInteger('idleTimeout', options.idleTimeout, DEFAULTS.idleTimeout),
    maxConnections: positiveInteger('maxConnections', options.maxConnections, DEFAULTS.maxConnections),
    frameTimeout: positiveInteger('frameTimeout', options.frameTimeout, DEFAULTS.frameTimeout),
    maxConnectionsPerSource: positiveInteger('maxConnectionsPerSource', options.maxConnectionsPerSource, DEFAULTS.maxConnectionsPerSource, true),
    connectionsPerSecondPerSource: positiveInteger('connectionsPerSecondPerSource', options.connectionsPerSecondPerSource, DEFAULTS.connectionsPerSecondPerSource, true),
    maxPeers: positiveInteger('maxPeers', options.maxPeers, DEFAULTS.maxPeers, true),
    cluster: cluster as string | undefined,
    allowFrom: allowList('options.allowFrom', options.allowFrom),
    outbound: resolveOutbound(options.outbound)
  };
}

const CERTIFICATE_FILE_NAMES: Record<keyof CertificateFiles, true> = {
  key: true, cert: true, ca: true, crl: true, id: true, debounce: true, interval: true, watch: true, retries: true
};

/** Validates the argument of watchCertificates(); throws a TypeError naming the field. */
export function validateCertificateFiles (files: unknown): asserts files is CertificateFiles {
  if (!isPlainObject(files)) throw new TypeError(`watchCertificates(files): files must be an object; got ${describe(files)}`);
  checkNames('files', files, new Set(Object.keys(CERTIFICATE_FILE_NAMES)), 'an option of watchCertificates()');
  for (const name of ['key', 'cert', 'ca'] as const) {
    if (typeof files[name] !== 'string' || files[name].length === 0) throw new TypeError(`files.${name} must be a file path; got ${describe(files[name])}`);
  }
  if (files.crl !== undefined && (typeof files.crl !== 'string' || files.crl.length === 0)) throw new TypeError(`files.crl must be a file path; got ${describe(files.crl)}`);
  if (files.id !== undefined && (typeof files.id !== 'string' || files.id.length === 0)) throw new TypeError(`files.id must be a non-empty string; got ${describe(files.id)}`);
  positiveInteger('files.debounce', files.debounce, 1);
  positiveInteger('files.interval', files.interval, 1);
  nonNegativeInteger('files.retries', files.retries, 0);
  optionalBoolean('files.watch', files.watch, true);
}
