/**
 * Options validated eagerly: a wrong option is a programmer's mistake, so it
 * throws at construction and names the option (with the nearest known name
 * for a misspelling). The caller's object is never mutated.
 */
import type { SecureContextOptions } from 'node:tls';
import { allowList } from '../net/addresses';
import { checkTrustMaterial, isMaterial } from '../tls/material';
import { DEFAULTS, type ResolvedOptions, type ResolvedTls } from './defaults';
import type { CertificateFiles, KeepAliveOptions, LookupFunction, MembershipOptions, OutboundOptions, PlaintextMigration, TlsOptions, TransportOptions } from './types';

/**
 * Option names, checked so that a misspelt option throws instead of being
 * ignored. Each list is a `Record` over the keys of its options type, so the
 * compiler refuses a new option that is missing here.
 */
const TOP_OPTION_NAMES: Record<keyof TransportOptions, true> = {
  host: true, port: true, tls: true, maxFrameSize: true, keepAlive: true, connectTimeout: true,
  handshakeTimeout: true, idleTimeout: true, maxConnections: true, maxHandshakes: true, frameTimeout: true, maxConnectionsPerSource: true,
  connectionsPerSecondPerSource: true, maxPeers: true, membership: true, cluster: true, allowFrom: true, outbound: true
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
const OUTBOUND_NAMES: Record<keyof OutboundOptions, true> = { allow: true, lookup: true, maxConnections: true, maxPerDestination: true, maxPooledRemotes: true, maxQueuedBytes: true, maxHandshakes: true };
const PLAINTEXT_NAMES: Record<keyof PlaintextMigration, true> = { accept: true, send: true, until: true };
const MEMBERSHIP_NAMES: Record<keyof MembershipOptions, true> = { pendingPerIntroducer: true, proofsPerSecond: true, proofTimeout: true, idsPerSource: true };

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

/** True when `text` holds a PEM header (a key, certificate or CRL as text). */
function looksLikePem (text: string): boolean {
  return text.includes('-----BEGIN ');
}

/** Secure-context options that hold PEM text: a file path there is a mistake OpenSSL reports as "no start line". */
const PEM_OPTIONS = ['key', 'cert', 'ca', 'crl'] as const;

/**
 * One item of a PEM option: PEM text, or a Buffer of PEM text or of DER (which
 * Node accepts for `ca`). A string without a PEM header is almost always a
 * file path given where the file's contents belong.
 */
function checkPemItem (path: string, item: unknown): void {
  if (typeof item === 'string') {
    if (!looksLikePem(item)) {
      throw new TypeError(`${path} must be PEM text or a Buffer of it (the file's contents, e.g. fs.readFileSync(file)), not a file name; got ${describe(item, true)} without a PEM header`);
    }
    return;
  }
  if (ArrayBuffer.isView(item)) {
    const bytes = Buffer.from(item.buffer, item.byteOffset, item.byteLength);
    // DER starts with a SEQUENCE (0x30); anything else must be PEM text.
    if (bytes.length > 0 && bytes[0] !== 0x30 && !looksLikePem(bytes.toString('latin1'))) {
      throw new TypeError(`${path} must be PEM text or a Buffer of it (the file's contents), not a file name; got a Buffer of ${bytes.length} bytes without a PEM header`);
    }
    return;
  }
  throw new TypeError(`${path} must be PEM text (a string or a Buffer); got ${describe(item, true)}`);
}

/**
 * The key material of a secure context, checked before OpenSSL sees it: each
 * PEM option holds PEM (or DER) rather than a file path, and `passphrase` is a
 * string. No message quotes a value: it may be a private key or a passphrase.
 */
function checkMaterial (path: string, value: Record<string, unknown>): void {
  for (const name of PEM_OPTIONS) {
    const option = value[name];
    if (option === undefined) continue;
    const items = Array.isArray(option) ? option : [option];
    items.forEach((item, i) => {
      const where = Array.isArray(option) ? `${path}.${name}[${i}]` : `${path}.${name}`;
      // Node also takes `key: [{ pem, passphrase }]` for several keys.
      if (name === 'key' && isPlainObject(item) && 'pem' in item) {
        checkPemItem(`${where}.pem`, item.pem);
        if (item.passphrase !== undefined && typeof item.passphrase !== 'string') throw new TypeError(`${where}.passphrase must be a string; got ${describe(item.passphrase, true)}`);
        return;
      }
      checkPemItem(where, item);
    });
  }
  if (value.passphrase !== undefined && typeof value.passphrase !== 'string') {
    throw new TypeError(`${path}.passphrase must be a string; got ${describe(value.passphrase, true)}`);
  }
  const pfx = value.pfx;
  if (pfx !== undefined && typeof pfx !== 'string' && !ArrayBuffer.isView(pfx) && !Array.isArray(pfx)) {
    throw new TypeError(`${path}.pfx must be a Buffer (PKCS#12) or an array of them; got ${describe(pfx, true)}`);
  }
}

/**
 * `crl` with every CRL as an item of its own. Node reads one CRL from each
 * string or Buffer it is given (OpenSSL's PEM_read_bio_X509_CRL, once), so a
 * file holding several (`cat old.crl new.crl`, what a CA rotation needs: once
 * any CRL is set, every CA of a chain needs one) would silently lose all but
 * the first, and every certificate of the other CAs would then fail with
 * UNABLE_TO_GET_CRL. Certificates in `ca` are all read; only CRLs need this.
 */
export function splitCrls (crl: unknown): unknown {
  if (crl === undefined) return crl;
  const items = Array.isArray(crl) ? crl : [crl];
  const out: unknown[] = [];
  for (const item of items) {
    const text = typeof item === 'string' ? item : ArrayBuffer.isView(item) ? Buffer.from(item.buffer, item.byteOffset, item.byteLength).toString('latin1') : undefined;
    const blocks = text?.match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----/g);
    if (blocks === null || blocks === undefined || blocks.length < 2) out.push(item);
    else out.push(...blocks.map((block) => `${block}\n`));
  }
  return Array.isArray(crl) || out.length > 1 ? out : out[0];
}

/** For setSecureContext(): secure-context options only, by name, and key material that is PEM, not a path. */
export function checkSecureContextNames (path: string, value: Record<string, unknown>): void {
  for (const key of Object.keys(value)) {
    if (TLS_OWN_KEYS.has(key)) throw new TypeError(`${path}.${key} cannot change after construction`);
  }
  checkNames(path, value, SECURE_CONTEXT_KEYS, 'a secure-context option', TLS_UNSUPPORTED);
  checkMaterial(path, value);
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

/**
 * A value for an error message. A string that may be secret is never quoted:
 * PEM text (a private key given where something else belongs), anything long,
 * and, with `hide`, any string at all (where a key or passphrase could be).
 */
function describe (value: unknown, hide = false): string {
  if (typeof value === 'string') {
    if (looksLikePem(value)) return `PEM text (${value.length} characters, not shown)`;
    if (hide || value.length > 64) return `a string of ${value.length} characters (not shown)`;
    return JSON.stringify(value);
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return ArrayBuffer.isView(value) ? 'a Buffer' : 'an object';
  return hide ? `a ${typeof value}` : `${typeof value} ${String(value)}`;
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
  // Never quoted: a PEM key given as `tls` itself is a mistake that happens.
  if (!isPlainObject(value)) throw new TypeError(`options.tls must be an object of Node TLS options ({ key, cert, ca, ... }); got ${describe(value, true)}`);
  checkNames('options.tls', value, TLS_KEYS, 'a TLS option of TcpTransport (Node secure-context options and the tls.* options in the README)', TLS_UNSUPPORTED);
  const context: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (!TLS_OWN_KEYS.has(key)) context[key] = value[key];
  }
  if (context.crl !== undefined) context.crl = splitCrls(context.crl);
  if (context.minVersion === undefined) context.minVersion = DEFAULTS.tlsMinVersion;
  else if (typeof context.minVersion !== 'string' || !TLS_VERSIONS.has(context.minVersion)) {
    throw new RangeError(`options.tls.minVersion must be 'TLSv1.2' or 'TLSv1.3'; got ${describe(context.minVersion)}`);
  }
  if ((context.cert === undefined) !== (context.key === undefined)) {
    throw new TypeError('options.tls.key and options.tls.cert go together: give both or neither');
  }
  checkMaterial('options.tls', value);
  // Trust material OpenSSL would read otherwise than the rotation re-check, or that refuses everything (src/tls/material.ts).
  if (isMaterial(context.ca) && isMaterial(context.crl)) checkTrustMaterial(context.ca, context.crl, 'options.tls');
  const requestCert = optionalBoolean('tls.requestCert', value.requestCert, DEFAULTS.tlsRequestCert);
  if (requestCert && context.ca === undefined && context.pfx === undefined) {
    // Without `ca`, OpenSSL checks client certificates against Node's public
    // roots: anyone with a certificate from a public CA would be a member.
    throw new TypeError('options.tls.requestCert needs options.tls.ca: the CA that signs your peers\' certificates (without it, any certificate from a public CA would be accepted)');
  }
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
    maxPooledRemotes: positiveInteger('outbound.maxPooledRemotes', value.maxPooledRemotes, DEFAULTS.outboundMaxPooledRemotes),
    maxQueuedBytes: positiveInteger('outbound.maxQueuedBytes', value.maxQueuedBytes, DEFAULTS.outboundMaxQueuedBytes),
    maxHandshakes: positiveInteger('outbound.maxHandshakes', value.maxHandshakes, DEFAULTS.outboundMaxHandshakes, true)
  };
}

function resolveMembership (value: unknown): ResolvedOptions['membership'] {
  if (value === undefined) value = {};
  const enforce = value !== false;
  if (value === false) value = {};
  if (!isPlainObject(value)) throw new TypeError(`options.membership must be false or an object; got ${describe(value)}`);
  checkNames('options.membership', value, new Set(Object.keys(MEMBERSHIP_NAMES)), 'an option');
  return {
    enforce,
    pendingPerIntroducer: positiveInteger('membership.pendingPerIntroducer', value.pendingPerIntroducer, DEFAULTS.membershipPendingPerIntroducer),
    proofsPerSecond: positiveInteger('membership.proofsPerSecond', value.proofsPerSecond, DEFAULTS.membershipProofsPerSecond, true),
    proofTimeout: positiveInteger('membership.proofTimeout', value.proofTimeout, DEFAULTS.membershipProofTimeout),
    idsPerSource: positiveInteger('membership.idsPerSource', value.idsPerSource, DEFAULTS.membershipIdsPerSource, true)
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
    maxHandshakes: positiveInteger('maxHandshakes', options.maxHandshakes, DEFAULTS.maxHandshakes, true),
    frameTimeout: positiveInteger('frameTimeout', options.frameTimeout, DEFAULTS.frameTimeout),
    maxConnectionsPerSource: positiveInteger('maxConnectionsPerSource', options.maxConnectionsPerSource, DEFAULTS.maxConnectionsPerSource, true),
    connectionsPerSecondPerSource: positiveInteger('connectionsPerSecondPerSource', options.connectionsPerSecondPerSource, DEFAULTS.connectionsPerSecondPerSource, true),
    maxPeers: positiveInteger('maxPeers', options.maxPeers, DEFAULTS.maxPeers, true),
    membership: resolveMembership(options.membership),
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
  for (const name of ['key', 'cert', 'ca', 'crl'] as const) {
    const path = files[name];
    if (path === undefined && name === 'crl') continue;
    if (typeof path !== 'string' || path.length === 0) throw new TypeError(`files.${name} must be a file path; got ${describe(path, true)}`);
    // The contents where the path belongs: never quoted (it may be the private key).
    if (looksLikePem(path) || path.includes('\n')) throw new TypeError(`files.${name} must be the path of a file, not its contents; got ${describe(path, true)}`);
  }
  if (files.id !== undefined && (typeof files.id !== 'string' || files.id.length === 0)) throw new TypeError(`files.id must be a non-empty string; got ${describe(files.id)}`);
  positiveInteger('files.debounce', files.debounce, 1);
  positiveInteger('files.interval', files.interval, 1);
  nonNegativeInteger('files.retries', files.retries, 0);
  optionalBoolean('files.watch', files.watch, true);
}
