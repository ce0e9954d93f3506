/**
 * Verifying a certificate against trust material outside a handshake.
 *
 * OpenSSL checks a certificate once, during the handshake. After
 * `setSecureContext()` the transport must decide whether connections that are
 * already open would still pass with the new CA and CRL, and before swapping
 * in certificate files it must check that the new set is usable. Node has
 * `X509Certificate` for chains and signatures but no CRL parser, so the small
 * DER reader below extracts what a revocation check needs (the revoked serial
 * numbers and the signature over them) and nothing else.
 *
 * The rules follow OpenSSL's for the handshake: a chain ends at a certificate
 * in `ca` (or Node's bundled roots when `ca` is unset), every certificate in it
 * is within its validity period, and, when CRLs are given, no certificate in it
 * is listed by a CRL that its issuer signed.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

export type Material = string | Buffer | Array<string | Buffer> | undefined;

/** A parsed CRL: who signed it (checked), and the serial numbers it revokes. */
export interface Crl {
  issuer: X509Certificate;
  revoked: Set<string>;
}

/** The trust material one secure context verifies against. */
export interface TrustStore {
  cas: X509Certificate[];
  crls: Crl[];
  /** The subjects of `cas` (nameKey), computed on first use. */
  caNames?: Set<string>;
}

function asList (value: Material): Array<string | Buffer> {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Every PEM block of `label` in `text`, or the whole buffer when it is DER. */
function blocks (item: string | Buffer, label: string): Buffer[] {
  const text = typeof item === 'string' ? item : item.toString('latin1');
  const pattern = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const found: Buffer[] = [];
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(text)) !== null) found.push(Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64'));
  if (found.length === 0 && Buffer.isBuffer(item) && item[0] === 0x30) found.push(item);
  return found;
}

/** The certificates in a `ca` or `cert` option (PEM strings may hold several). */
type CryptoModule = typeof import('node:crypto');
let cryptoModule: CryptoModule | undefined;
/** `node:crypto` is loaded when a certificate is first parsed, not by require(): plain mode never needs it. */
export function loadCrypto (): CryptoModule {
  cryptoModule ??= require('node:crypto') as CryptoModule;
  return cryptoModule;
}

export function parseCertificates (value: Material): X509Certificate[] {
  const certs: X509Certificate[] = [];
  for (const item of asList(value)) {
    for (const der of blocks(item, 'CERTIFICATE')) certs.push(new (loadCrypto().X509Certificate)(der));
  }
  return certs;
}

// ---------------------------------------------------------------- DER

interface Tlv { tag: number; start: number; content: number; end: number }

function readTlv (buf: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER');
  const tag = buf[offset]!;
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
  '1.3.101.112': null
};

/**
 * Parses one DER CRL and checks its signature against `cas`. Throws when it is
 * malformed, uses an unknown signature algorithm, or no CA in `cas` signed it.
 */
export function parseCrl (der: Buffer, cas: X509Certificate[]): Crl {
  const root = readTlv(der, 0, der.length);
  const [tbs, algorithm, signature] = children(der, root);
  if (tbs === undefined || algorithm === undefined || signature === undefined || signature.tag !== 0x03) throw new Error('not a CRL');
  const algOid = oid(der, children(der, algorithm)[0]!);
  if (!(algOid in SIGNATURE_DIGESTS)) throw new Error(`CRL signed with unsupported algorithm ${algOid}`);
  const digest = SIGNATURE_DIGESTS[algOid]!;
  const signed = der.subarray(tbs.start, tbs.end);
  const sig = der.subarray(signature.content + 1, signature.end);
  const issuer = cas.find((ca) => {
    try {
      return loadCrypto().verify(digest, signed, ca.publicKey as KeyObject, sig);
    } catch {
      return false;
    }
  });
  if (issuer === undefined) throw new Error('CRL is not signed by any CA in ca');
  const fields = children(der, tbs);
  let i = 0;
  if (fields[i]?.tag === 0x02) i++; // version
  i += 3; // signature algorithm, issuer, thisUpdate
  if (fields[i]?.tag === 0x17 || fields[i]?.tag === 0x18) i++; // nextUpdate
  const revoked = new Set<string>();
  const list = fields[i];
  if (list !== undefined && list.tag === 0x30) {
    for (const entry of children(der, list)) {
      const serial = children(der, entry)[0]!;
      revoked.add(normaliseSerial(der.subarray(serial.content, serial.end).toString('hex')));
    }
  }
  return { issuer, revoked };
}

/** Builds the trust store of a secure context's `ca` and `crl` options; `roots` stand in for an unset `ca`. */
export function trustStore (ca: Material, crl: Material, roots: readonly string[]): TrustStore {
  const cas = ca === undefined ? roots.map((pem) => new (loadCrypto().X509Certificate)(pem)) : parseCertificates(ca);
  const crls: Crl[] = [];
  for (const item of asList(crl)) {
    for (const der of blocks(item, 'X509 CRL')) crls.push(parseCrl(der, cas));
  }
  return { cas, crls };
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
 * Where two CAs of `store` could have issued a certificate, both are listed,
 * and verifyChain() follows the one whose signature holds.
 */
export function chainFromStore (certificate: PeerCertificate, store: TrustStore): X509Certificate[] {
  if (certificate.raw === undefined) return [];
  const chain = [new (loadCrypto().X509Certificate)(certificate.raw)];
  for (let i = 0; i < chain.length && chain.length < 10; i++) {
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
  while (current?.raw !== undefined && chain.length < 10) {
    chain.push(new (loadCrypto().X509Certificate)(current.raw));
    const next = current.issuerCertificate;
    if (next === undefined || next === current) break;
    current = next;
  }
  return chain;
}

function withinValidity (cert: X509Certificate, now: number): string | undefined {
  if (Date.parse(cert.validFrom) > now) return 'CERT_NOT_YET_VALID';
  if (Date.parse(cert.validTo) < now) return 'CERT_HAS_EXPIRED';
  return undefined;
}

function issued (child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

function revokedBy (cert: X509Certificate, store: TrustStore): boolean {
  const serial = normaliseSerial(cert.serialNumber);
  return store.crls.some((crl) => crl.revoked.has(serial) && issued(cert, crl.issuer));
}

/**
 * Why `chain` (leaf first, intermediates after it) would fail verification
 * against `store` now, or undefined when it verifies. Codes are OpenSSL's names
 * as Node reports them.
 */
export function verifyChain (chain: X509Certificate[], store: TrustStore, now = Date.now()): string | undefined {
  let current = chain[0];
  if (current === undefined) return 'NO_CERTIFICATE';
  const rest = chain.slice(1);
  for (let depth = 0; depth < 10; depth++) {
    const invalid = withinValidity(current, now);
    if (invalid !== undefined) return invalid;
    if (revokedBy(current, store)) return 'CERT_REVOKED';
    const anchor = store.cas.find((ca) => issued(current!, ca));
    if (anchor !== undefined) return withinValidity(anchor, now);
    // A certificate that is itself in `ca` is trusted as it is.
    if (store.cas.some((ca) => ca.fingerprint256 === current!.fingerprint256)) return undefined;
    // Walk up what the peer presented, never through the same certificate twice.
    const parent = rest.find((candidate) => candidate.fingerprint256 !== current!.fingerprint256 && issued(current!, candidate));
    if (parent === undefined) {
      if (depth === 0) return 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
      return issued(current, current) ? 'SELF_SIGNED_CERT_IN_CHAIN' : 'UNABLE_TO_GET_ISSUER_CERT';
    }
    rest.splice(rest.indexOf(parent), 1);
    current = parent;
  }
  return 'CERT_CHAIN_TOO_LONG';
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
