/**
 * Verifying a certificate against trust material outside a handshake.
 *
 * OpenSSL checks a certificate once, during the handshake. After
 * `setSecureContext()` the transport must decide whether connections that are
 * already open would still pass with the new CA and CRL. Node has
 * `X509Certificate` for signatures and issuer matching but neither a chain
 * builder over a trust store nor a CRL parser, so this module reproduces the
 * part of OpenSSL 3's X509_verify_cert() that Node's TLS uses, step for step:
 *
 * - the material is read as Node reads it (`ca`: PEM certificates, stopping
 *   at the first block that does not parse; `crl`: the first PEM CRL of each
 *   item);
 * - the chain is built trusted-first: at each step the issuer is looked up in
 *   `ca` (the first one whose name and key identifier match and that is valid
 *   now, else the one that expires last), and only while none is found in
 *   the peer's own certificates; it is trusted when it ends at a self-signed
 *   certificate of `ca`;
 * - with any `crl`, every certificate of the chain, the root included, needs
 *   a CRL from its issuer (OpenSSL's CRL_CHECK_ALL, which Node sets);
 * - signatures and validity are checked from the anchor down.
 *
 * Node's verify callback lets OpenSSL carry on after an error and reports the
 * last one, so the code returned here is the last problem found, in the same
 * order. What this module does not reproduce is refused before it is ever
 * used, by checkTrustMaterial() in ./material.ts: the differential test
 * (test/integration/trust-differential.test.ts) holds the two together.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

export type Material = string | Buffer | Array<string | Buffer> | undefined;

type CryptoModule = typeof import('node:crypto');
let cryptoModule: CryptoModule | undefined;
/** `node:crypto` is loaded when a certificate is first parsed, not by require(): plain mode never needs it. */
export function loadCrypto (): CryptoModule {
  cryptoModule ??= require('node:crypto') as CryptoModule;
  return cryptoModule;
}

export function asList (value: Material): Array<string | Buffer> {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

// ---------------------------------------------------------------- DER

interface Tlv { tag: number; start: number; content: number; end: number }

/** One DER element at `offset`; definite lengths only, never past `limit`. */
function readTlv (buf: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('unsupported DER tag');
  let length = buf[offset + 1]!;
  let content = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || content + n > limit) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[content + i]!;
    content += n;
  }
  const end = content + length;
  if (end > limit) throw new Error('truncated DER');
  return { tag, start: offset, content, end };
}

function children (buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.content; at < parent.end;) {
    const tlv = readTlv(buf, at, parent.end);
    out.push(tlv);
    at = tlv.end;
  }
  return out;
}

function oid (buf: Buffer, tlv: Tlv): string {
  if (tlv.tag !== 0x06 || tlv.end <= tlv.content) throw new Error('expected an OID');
  const bytes = buf.subarray(tlv.content, tlv.end);
  const parts = [Math.floor(bytes[0]! / 40), bytes[0]! % 40];
  let value = 0;
  for (let i = 1; i < bytes.length; i++) {
    value = value * 128 + (bytes[i]! & 0x7f);
    if ((bytes[i]! & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/** UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), in ms. */
function time (buf: Buffer, tlv: Tlv): number {
  const text = buf.toString('latin1', tlv.content, tlv.end);
  const match = tlv.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : tlv.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (match === null) throw new Error('unsupported time encoding');
  let year = Number(match[1]);
  if (tlv.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return Date.UTC(year, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6]));
}

const OID = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  crlNumber: '2.5.29.20',
  certificateIssuer: '2.5.29.29',
  deltaCrlIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  authorityKeyIdentifier: '2.5.29.35'
} as const;

interface Extension { oid: string; critical: boolean; value: Buffer }

/** The extensions of a certificate, CRL or CRL entry (an `Extensions` SEQUENCE). */
function extensions (buf: Buffer, list: Tlv): Extension[] {
  return children(buf, list).map((ext) => {
    const [id, second, third] = children(buf, ext);
    const critical = third !== undefined && second!.tag === 0x01 && buf[second!.content] !== 0;
    const value = third ?? second;
    if (id === undefined || value === undefined || value.tag !== 0x04) throw new Error('malformed extension');
    return { oid: oid(buf, id), critical, value: buf.subarray(value.content, value.end) };
  });
}

/** The keyIdentifier of an AuthorityKeyIdentifier extension value, if it has one. */
function akidKeyId (value: Buffer): string | undefined {
  const seq = readTlv(value, 0, value.length);
  const keyId = children(value, seq).find((part) => part.tag === 0x80);
  return keyId === undefined ? undefined : value.toString('hex', keyId.content, keyId.end);
}

/** KeyUsage bits as OpenSSL numbers them (digitalSignature 0x80 ... cRLSign 0x02, decipherOnly 0x8000). */
function keyUsageBits (value: Buffer): number {
  const bits = readTlv(value, 0, value.length);
  if (bits.tag !== 0x03) throw new Error('malformed keyUsage');
  const first = bits.content + 1 < bits.end ? value[bits.content + 1]! : 0;
  const second = bits.content + 2 < bits.end ? value[bits.content + 2]! : 0;
  return first | (second << 8);
}

const KU_KEY_CERT_SIGN = 0x04;
const KU_CRL_SIGN = 0x02;

/** What OpenSSL's chain building and CRL lookup read from a certificate, beyond X509Certificate's fields. */
export interface CertInfo {
  /** DER of the issuer and subject names: a CRL is looked up by its issuer's. */
  issuer: string;
  subject: string;
  skid: string | undefined;
  akid: string | undefined;
  /** KeyUsage bits, or undefined without the extension (then every use is allowed). */
  keyUsage: number | undefined;
  notBefore: number;
  notAfter: number;
}

const infos = new WeakMap<X509Certificate, CertInfo>();

export function certInfo (cert: X509Certificate): CertInfo {
  let info = infos.get(cert);
  if (info !== undefined) return info;
  const der = cert.raw;
  const [tbs] = children(der, readTlv(der, 0, der.length));
  if (tbs === undefined) throw new Error('not a certificate');
  const fields = children(der, tbs);
  let i = fields[0]?.tag === 0xa0 ? 1 : 0;
  i += 2; // serial number, signature algorithm
  const issuer = fields[i++]!;
  const [from, to] = children(der, fields[i++]!);
  const subject = fields[i++]!;
  const exts = fields.find((field) => field.tag === 0xa3);
  const list = exts === undefined ? [] : extensions(der, children(der, exts)[0]!);
  const find = (id: string): Extension | undefined => list.find((ext) => ext.oid === id);
  const skid = find(OID.subjectKeyIdentifier);
  const akid = find(OID.authorityKeyIdentifier);
  const ku = find(OID.keyUsage);
  let skidHex: string | undefined;
  if (skid !== undefined) {
    const inner = readTlv(skid.value, 0, skid.value.length);
    skidHex = skid.value.toString('hex', inner.content, inner.end);
  }
  info = {
    issuer: der.toString('hex', issuer.start, issuer.end),
    subject: der.toString('hex', subject.start, subject.end),
    skid: skidHex,
    akid: akid === undefined ? undefined : akidKeyId(akid.value),
    keyUsage: ku === undefined ? undefined : keyUsageBits(ku.value),
    notBefore: time(der, from!),
    notAfter: time(der, to!)
  };
  infos.set(cert, info);
  return info;
}

// ---------------------------------------------------------------- CRLs

/** Serial numbers compared as upper-case hex without leading zeros (X509Certificate's form, normalised). */
export function normaliseSerial (hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

/** Signature algorithms a CRL may be signed with: OID -> digest (null for EdDSA). */
const SIGNATURE_DIGESTS: Record<string, string | null> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null,
  '1.3.101.113': null
};

/** A parsed CRL. Its signature is checked against the issuer a chain gives it (OpenSSL's way), when used. */
export interface Crl {
  der: Buffer;
  /** DER of the issuer name (hex). */
  issuer: string;
  thisUpdate: number;
  nextUpdate: number | undefined;
  revoked: Set<string>;
  akid: string | undefined;
  /** A deltaCRLIndicator, an issuingDistributionPoint, or a critical extension OpenSSL does not handle: named. */
  unsupported: string | undefined;
  /** Whether `signer` signed it; results kept per signer certificate. */
  signedBy (signer: X509Certificate): boolean;
}

/** Parses one DER CRL. Throws when it is malformed or signed with an algorithm this reader does not know. */
export function parseCrl (der: Buffer): Crl {
  const root = readTlv(der, 0, der.length);
  if (root.end !== der.length) throw new Error('bytes after the CRL');
  const [tbs, algorithm, signature, extra] = children(der, root);
  if (tbs === undefined || algorithm === undefined || signature === undefined || extra !== undefined || signature.tag !== 0x03) throw new Error('not a CRL');
  const algOid = oid(der, children(der, algorithm)[0]!);
  if (!(algOid in SIGNATURE_DIGESTS)) throw new Error(`CRL signed with unsupported algorithm ${algOid}`);
  const digest = SIGNATURE_DIGESTS[algOid]!;
  const signed = der.subarray(tbs.start, tbs.end);
  const sig = der.subarray(signature.content + 1, signature.end);
  const fields = children(der, tbs);
  let i = 0;
  if (fields[i]?.tag === 0x02) i++; // version
  i++; // signature algorithm
  const issuer = fields[i++];
  const thisUpdate = fields[i++];
  if (issuer === undefined || issuer.tag !== 0x30 || thisUpdate === undefined) throw new Error('not a CRL');
  let nextUpdate: number | undefined;
  if (fields[i]?.tag === 0x17 || fields[i]?.tag === 0x18) nextUpdate = time(der, fields[i++]!);
  const revoked = new Set<string>();
  let unsupported: string | undefined;
  if (fields[i]?.tag === 0x30) {
    for (const entry of children(der, fields[i++]!)) {
      const [serial, , entryExtensions] = children(der, entry);
      if (serial === undefined || serial.tag !== 0x02) throw new Error('malformed CRL entry');
      revoked.add(normaliseSerial(der.toString('hex', serial.content, serial.end)));
      // OpenSSL refuses a CRL with a critical entry extension other than certificateIssuer (indirect CRLs).
      for (const ext of entryExtensions === undefined ? [] : extensions(der, entryExtensions)) {
        if (ext.critical) unsupported ??= `a critical entry extension ${ext.oid}`;
      }
    }
  }
  let akid: string | undefined;
  const crlExtensions = fields[i]?.tag === 0xa0 ? extensions(der, children(der, fields[i]!)[0]!) : [];
  for (const ext of crlExtensions) {
    if (ext.oid === OID.deltaCrlIndicator) unsupported ??= 'a delta CRL (deltaCRLIndicator)';
    else if (ext.oid === OID.issuingDistributionPoint) unsupported ??= 'an issuing distribution point';
    else if (ext.oid === OID.authorityKeyIdentifier) akid = akidKeyId(ext.value);
    else if (ext.critical) unsupported ??= `a critical extension ${ext.oid}`;
  }
  const verdicts = new WeakMap<X509Certificate, boolean>();
  return {
    der,
    issuer: der.toString('hex', issuer.start, issuer.end),
    thisUpdate: time(der, thisUpdate),
    nextUpdate,
    revoked,
    akid,
    unsupported,
    signedBy (signer: X509Certificate): boolean {
      let ok = verdicts.get(signer);
      if (ok === undefined) {
        try {
          ok = loadCrypto().verify(digest, signed, signer.publicKey as KeyObject, sig);
        } catch {
          ok = false;
        }
        verdicts.set(signer, ok);
      }
      return ok;
    }
  };
}

// ---------------------------------------------------------------- reading material as Node does

/** What Node's secure context reads from one `ca` item: the certificates, up to the first block that fails. */
export interface CaItem {
  certificates: X509Certificate[];
  /** `-----BEGIN CERTIFICATE-----` markers anywhere in the item (glued ones included). */
  markers: number;
  /** Why reading stopped before the end, if it did. */
  failure: string | undefined;
}

const CERT_LABELS = new Set(['CERTIFICATE', 'TRUSTED CERTIFICATE', 'X509 CERTIFICATE']);

interface PemBlock { label: string; body: string; line: number }

/**
 * Reads PEM blocks line by line as OpenSSL's PEM_read_bio does: a block
 * starts on a line that is `-----BEGIN <label>-----` and ends on a line that
 * is `-----END <label>-----` (trailing blanks allowed); other lines outside a
 * block are skipped. Calls `onBlock` for each block; a malformed block ends
 * the reading with its reason.
 */
function readPem (text: string, onBlock: (block: PemBlock) => string | undefined): string | undefined {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const begin = /^-----BEGIN ([^-]+)-----$/.exec(lines[i]!.replace(/[ \t\r]+$/, ''));
    if (begin === null) continue;
    const label = begin[1]!;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j]!.replace(/[ \t\r]+$/, '');
      if (line.startsWith('-----END ')) break;
      body.push(line);
    }
    if (j === lines.length) return `block ${label} at line ${i + 1} has no END line`;
    if (lines[j]!.replace(/[ \t\r]+$/, '') !== `-----END ${label}-----`) return `block at line ${i + 1} does not end with its own line "-----END ${label}-----" (a block glued to it?)`;
    if (body.some((line) => !/^[A-Za-z0-9+/=]*$/.test(line))) return `block at line ${i + 1} is not base64`;
    const failure = onBlock({ label, body: body.join(''), line: i + 1 });
    if (failure !== undefined) return failure;
    i = j;
  }
  return undefined;
}

function textOf (item: string | Buffer): string {
  return typeof item === 'string' ? item : item.toString('latin1');
}

/** One `ca` item read as Node does (PEM only: a DER buffer yields no certificate). */
export function readCaItem (item: string | Buffer): CaItem {
  const text = textOf(item);
  const certificates: X509Certificate[] = [];
  const failure = readPem(text, (block) => {
    if (!CERT_LABELS.has(block.label)) return undefined;
    if (block.label !== 'CERTIFICATE') return `block at line ${block.line} is a ${block.label}, which this transport does not read`;
    try {
      certificates.push(new (loadCrypto().X509Certificate)(Buffer.from(block.body, 'base64')));
      return undefined;
    } catch {
      return `block at line ${block.line} is not a certificate`;
    }
  });
  return { certificates, markers: text.split('-----BEGIN CERTIFICATE-----').length - 1, failure };
}

/** What Node reads from one `crl` item: its first PEM CRL. */
export interface CrlItem {
  crl: Crl | undefined;
  /** `-----BEGIN X509 CRL-----` markers in the item. */
  markers: number;
  failure: string | undefined;
}

export function readCrlItem (item: string | Buffer): CrlItem {
  const text = textOf(item);
  let crl: Crl | undefined;
  const failure = readPem(text, (block) => {
    if (block.label !== 'X509 CRL' || crl !== undefined) return undefined;
    try {
      crl = parseCrl(Buffer.from(block.body, 'base64'));
      return undefined;
    } catch (error) {
      return `block at line ${block.line}: ${(error as Error).message}`;
    }
  });
  return { crl, markers: text.split('-----BEGIN X509 CRL-----').length - 1, failure: crl === undefined ? failure ?? 'no PEM CRL' : failure };
}

/** The certificates in a `ca` or `cert` option, as Node reads them (PEM strings may hold several). */
export function parseCertificates (value: Material): X509Certificate[] {
  return asList(value).flatMap((item) => readCaItem(item).certificates);
}

// ---------------------------------------------------------------- trust stores

/** The trust material one secure context verifies against. */
export interface TrustStore {
  /** The CAs in the order OpenSSL searches them (duplicates dropped). */
  cas: X509Certificate[];
  crls: Crl[];
  /** Whether a `crl` option was given at all: then every certificate of a chain needs a CRL (Node sets CRL_CHECK_ALL). */
  crlCheck: boolean;
  /** The subjects of `cas` (nameKey), computed on first use. */
  caNames?: Set<string>;
}

/**
 * The trust store of a secure context's `ca` and `crl` options, read as Node
 * reads them; `roots` stand in for an unset `ca`. It does not judge the
 * material (checkTrustMaterial() does, before it is used).
 */
export function trustStore (ca: Material, crl: Material, roots: readonly string[]): TrustStore {
  const cas: X509Certificate[] = [];
  const certs = ca === undefined ? roots.map((pem) => new (loadCrypto().X509Certificate)(pem)) : parseCertificates(ca);
  for (const cert of certs) {
    if (!cas.some((known) => known.fingerprint256 === cert.fingerprint256)) cas.push(cert);
  }
  const crls: Crl[] = [];
  const items = asList(crl);
  for (const item of items) {
    const read = readCrlItem(item);
    if (read.crl !== undefined && !crls.some((known) => known.der.equals(read.crl!.der))) crls.push(read.crl);
  }
  return { cas, crls, crlCheck: items.length > 0 };
}

/** A distinguished name in Node's legacy object form, as a string that is equal exactly when the names are. */
function nameKey (name: unknown): string {
  return JSON.stringify(name ?? null);
}

/**
 * True when a CA of `store` is named as the certificate's issuer: the chain
 * Node would read for it is the certificate and that CA, nothing the peer
 * sent in between. (Names are compared as Node renders them; which CA of
 * that name signed it is decided, by signature, only when needed.)
 */
export function issuerNamedIn (certificate: PeerCertificate, store: TrustStore): boolean {
  store.caNames ??= new Set(store.cas.map((ca) => nameKey(ca.toLegacyObject().subject)));
  return store.caNames.has(nameKey(certificate.issuer));
}

/**
 * The chain of a leaf read alone (`getPeerCertificate(false)`), as
 * `getPeerCertificate(true)` would have given it: the leaf, then its issuers
 * from `store` (the one it was verified against) up to a self-issued one.
 * Where two CAs of `store` could have issued a certificate, both are listed;
 * verifyChain() searches `store` first anyway, as OpenSSL does.
 */
export function chainFromStore (certificate: PeerCertificate, store: TrustStore): X509Certificate[] {
  if (certificate.raw === undefined) return [];
  const chain = [new (loadCrypto().X509Certificate)(certificate.raw)];
  for (let i = 0; i < chain.length && chain.length < MAX_CHAIN; i++) {
    const current = chain[i]!;
    if (current.checkIssued(current)) continue;
    for (const ca of store.cas) {
      if (current.checkIssued(ca) && !chain.includes(ca)) chain.push(ca);
    }
  }
  return chain;
}

/** The chain a peer presented, leaf first, from `getPeerCertificate(true)`. */
export function presentedChain (certificate: PeerCertificate | undefined): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let current = certificate as (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined;
  while (current?.raw !== undefined && chain.length < MAX_CHAIN) {
    chain.push(new (loadCrypto().X509Certificate)(current.raw));
    const next = current.issuerCertificate;
    if (next === undefined || next === current) break;
    current = next;
  }
  return chain;
}

// ---------------------------------------------------------------- verification

/** Longest chain followed (OpenSSL allows 100; nothing in a cluster comes near 10). */
const MAX_CHAIN = 10;

function timeProblem (info: { notBefore: number; notAfter: number }, now: number, prefix: 'CERT' | 'CRL'): string | undefined {
  if (info.notBefore > now) return `${prefix}_NOT_YET_VALID`;
  if (info.notAfter < now) return `${prefix}_HAS_EXPIRED`;
  return undefined;
}

/** OpenSSL's check_issued: names, key identifiers, key type, keyCertSign (X509_check_issued, as checkIssued() asks it). */
function mayHaveIssued (child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent);
  } catch {
    return false;
  }
}

/** Self-issued as OpenSSL's EXFLAG_SS: the certificate names itself as issuer (keys, identifiers and usage agreeing). */
function selfIssued (cert: X509Certificate): boolean {
  return mayHaveIssued(cert, cert);
}

function valid (cert: X509Certificate, now: number): boolean {
  return timeProblem(certInfo(cert), now, 'CERT') === undefined;
}

/**
 * OpenSSL's choice of issuer among `candidates`: the first that may have
 * issued `cert` and is valid now, else of those that may have, the first
 * that expires last.
 */
function bestIssuer (cert: X509Certificate, candidates: readonly X509Certificate[], now: number): X509Certificate | undefined {
  let best: X509Certificate | undefined;
  for (const candidate of candidates) {
    if (!mayHaveIssued(cert, candidate)) continue;
    if (valid(candidate, now)) return candidate;
    if (best === undefined || certInfo(candidate).notAfter > certInfo(best).notAfter) best = candidate;
  }
  return best;
}

function signedBy (cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Why `chain` (leaf first, then what the peer presented) would fail
 * verification against `store` at `now`, or undefined when it verifies.
 * Codes are OpenSSL's names as Node reports them; with several problems, the
 * one Node would report (OpenSSL's last).
 */
export function verifyChain (presented: X509Certificate[], store: TrustStore, now = Date.now()): string | undefined {
  const leaf = presented[0];
  if (leaf === undefined) return 'NO_CERTIFICATE';
  const problems: string[] = [];
  // Build the chain, trusted first (OpenSSL 3's build_chain with X509_V_FLAG_TRUSTED_FIRST).
  const untrusted = presented.slice(1).filter((cert, i, all) => all.findIndex((other) => other.fingerprint256 === cert.fingerprint256) === i && cert.fingerprint256 !== leaf.fingerprint256);
  const chain = [leaf];
  let numUntrusted = 1;
  let searchUntrusted = true;
  let trusted = false;
  while (chain.length <= MAX_CHAIN) {
    const top = chain[chain.length - 1]!;
    const topSelfIssued = selfIssued(top);
    const issuer = bestIssuer(top, store.cas, now);
    if (issuer !== undefined) {
      if (!topSelfIssued) {
        chain.push(issuer);
        searchUntrusted = false;
        if (selfIssued(issuer)) {
          trusted = true;
          break;
        }
        continue;
      }
      // A self-issued certificate from the peer is trusted only when `ca` holds that very certificate.
      if (chain.length === numUntrusted && issuer.fingerprint256 === top.fingerprint256) {
        chain[chain.length - 1] = issuer;
        numUntrusted--;
        trusted = true;
        break;
      }
    }
    if (!searchUntrusted || topSelfIssued) break;
    const next = bestIssuer(top, untrusted.filter((cert) => !chain.includes(cert)), now);
    if (next === undefined) break;
    untrusted.splice(untrusted.indexOf(next), 1);
    chain.push(next);
    numUntrusted++;
  }
  if (!trusted) {
    const top = chain[chain.length - 1]!;
    if (chain.length > MAX_CHAIN) problems.push('CERT_CHAIN_TOO_LONG');
    else if (selfIssued(top)) problems.push(chain.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN');
    else problems.push(numUntrusted < chain.length ? 'UNABLE_TO_GET_ISSUER_CERT' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  }
  // Every certificate above the leaf must be a CA.
  for (let i = 1; i < chain.length; i++) {
    if (!chain[i]!.ca) problems.push('INVALID_CA');
  }
  // Revocation of every certificate in the chain, the root included (CRL_CHECK_ALL).
  if (store.crlCheck) {
    for (let i = 0; i < chain.length; i++) {
      const problem = revocationProblem(chain, i, store, now);
      if (problem !== undefined) problems.push(problem);
    }
  }
  // Signatures and validity, from the anchor down (internal_verify).
  let n = chain.length - 1;
  let issuer = chain[n]!;
  let subject = issuer;
  if (!selfIssued(issuer)) {
    if (n === 0) {
      problems.push('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    } else {
      n--;
      subject = chain[n]!;
    }
  }
  for (; n >= 0; n--) {
    subject = chain[n]!;
    if (subject !== issuer) {
      const usage = certInfo(issuer).keyUsage;
      if (usage !== undefined && (usage & KU_KEY_CERT_SIGN) === 0) problems.push('KEYUSAGE_NO_CERTSIGN');
      if (!signedBy(subject, issuer)) problems.push('CERT_SIGNATURE_FAILURE');
    }
    const expired = timeProblem(certInfo(subject), now, 'CERT');
    if (expired !== undefined) problems.push(expired);
    issuer = subject;
  }
  return problems[problems.length - 1];
}

/** OpenSSL's check_cert for the certificate at `depth` of a built chain. */
function revocationProblem (chain: X509Certificate[], depth: number, store: TrustStore, now: number): string | undefined {
  const cert = chain[depth]!;
  const info = certInfo(cert);
  const crl = store.crls.find((candidate) => candidate.issuer === info.issuer && candidate.unsupported === undefined);
  if (crl === undefined) return 'UNABLE_TO_GET_CRL';
  let issuer: X509Certificate;
  if (depth < chain.length - 1) issuer = chain[depth + 1]!;
  else if (selfIssued(cert)) issuer = cert;
  else return 'UNABLE_TO_GET_CRL_ISSUER';
  const issuerInfo = certInfo(issuer);
  // A CRL whose authority key identifier names another key is not this issuer's.
  if (crl.akid !== undefined && issuerInfo.skid !== undefined && crl.akid !== issuerInfo.skid) return 'UNABLE_TO_GET_CRL';
  const problems: string[] = [];
  if (issuerInfo.keyUsage !== undefined && (issuerInfo.keyUsage & KU_CRL_SIGN) === 0) problems.push('KEYUSAGE_NO_CRL_SIGN');
  const stale = timeProblem({ notBefore: crl.thisUpdate, notAfter: crl.nextUpdate ?? Infinity }, now, 'CRL');
  if (stale !== undefined) problems.push(stale);
  if (!crl.signedBy(issuer)) problems.push('CRL_SIGNATURE_FAILURE');
  if (crl.revoked.has(normaliseSerial(cert.serialNumber))) problems.push('CERT_REVOKED');
  return problems[problems.length - 1];
}

/**
 * Why a peer certificate seen on a live connection would not verify against
 * `store` now, or undefined when it still does. A connection whose certificate
 * cannot be read any more fails closed (`NO_CERTIFICATE`).
 */
export function liveCertificateProblem (certificate: PeerCertificate | undefined, store: TrustStore, now = Date.now()): string | undefined {
  const chain = presentedChain(certificate);
  return verifyChain(chain, store, now);
}

/** The subject CN of a peer certificate (several joined by commas), if it has one. */
export function subjectOf (certificate: PeerCertificate | undefined): string | undefined {
  const cn = certificate?.subject?.CN as string | string[] | undefined;
  return Array.isArray(cn) ? cn.join(',') : cn;
}

/** When the first certificate in a `cert` option expires (ms since the epoch); undefined if unreadable (pfx). */
export function certificateExpiry (cert: Material): number | undefined {
  try {
    const first = parseCertificates(cert)[0];
    return first === undefined ? undefined : Date.parse(first.validTo);
  } catch {
    return undefined;
  }
}

/** The first certificate of a `cert` option in PeerCertificate form (subject, subjectaltname), if readable. */
export function parsePeerLike (cert: Material): PeerCertificate | undefined {
  try {
    return parseCertificates(cert)[0]?.toLegacyObject();
  } catch {
    return undefined;
  }
}
