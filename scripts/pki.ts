/**
 * X.509 certificates and CRLs written with Node's crypto and a small DER
 * writer, for `gossipmonger-tls-certs`.
 *
 * Why not a library: the certificates must rotate (a CA's subject key
 * identifier and the authority key identifier of what it signs, so that two
 * CAs can be trusted together) and be revocable (a CRL signed by the CA), and
 * the command must run with Node alone, without openssl or a dependency. The
 * selfsigned package it used before could do neither. What is written here is
 * the profile of RFC 5280 that OpenSSL and Node check, nothing more:
 * version 3 certificates with the extensions the transport needs, and version
 * 2 CRLs with an authority key identifier and a CRL number.
 */
import { createHash, createPrivateKey, generateKeyPair, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

// ---------------------------------------------------------------- DER writer

/** One DER element: tag, length, content. */
function tlv (tag: number, content: Buffer): Buffer {
  const n = content.length;
  let header: Buffer;
  if (n < 0x80) header = Buffer.from([tag, n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    header = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([header, content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octets = (content: Buffer): Buffer => tlv(0x04, content);
const bool = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
const NULL = Buffer.from([0x05, 0x00]);
/** Context-specific, constructed ([n] EXPLICIT). */
const explicit = (n: number, content: Buffer): Buffer => tlv(0xa0 + n, content);
/** A BIT STRING of whole bytes. */
const bits = (content: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unused]), content]));

/** A non-negative INTEGER from big-endian bytes (minimal, with a 0x00 when the top bit is set). */
function integer (bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let body = bytes.subarray(i);
  if (body.length === 0) body = Buffer.from([0]);
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(0x02, body);
}

/** Big-endian bytes of a hex string (an odd length gets a leading zero). */
const hexBytes = (hex: string): Buffer => Buffer.from(hex.length % 2 === 1 ? `0${hex}` : hex, 'hex');
const smallInteger = (n: number): Buffer => integer(hexBytes(n.toString(16)));

function oid (dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [parts[0]! * 40 + parts[1]!];
  for (const part of parts.slice(2)) {
    const group: number[] = [part & 0x7f];
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) group.unshift((v & 0x7f) | 0x80);
    out.push(...group);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5), to the second. */
function time (date: Date): Buffer {
  const iso = date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:T]/g, '');
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}

/** A name of one attribute, the common name, as a UTF8String. */
function commonName (cn: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
}

function extension (id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

// ---------------------------------------------------------------- DER reader (what the writer needs from existing certificates)

interface Tlv { tag: number; start: number; content: number; end: number }

function readTlv (buf: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new Error('truncated DER');
  const tag = buf[at]!;
  let length = buf[at + 1]!;
  let content = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || content + n > limit) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[content + i]!;
    content += n;
  }
  if (content + length > limit) throw new Error('truncated DER');
  return { tag, start: at, content, end: content + length };
}

function childrenOf (buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.content; at < parent.end;) {
    const child = readTlv(buf, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** The fields of a certificate this writer reuses: its subject as encoded, and its subject key identifier. */
function certificateFields (cert: X509Certificate): { subject: Buffer; keyId: Buffer } {
  const der = cert.raw;
  const tbs = childrenOf(der, readTlv(der, 0, der.length))[0]!;
  const fields = childrenOf(der, tbs);
  const base = fields[0]!.tag === 0xa0 ? 1 : 0;
  const subject = fields[base + 4]!;
  let keyId: Buffer | undefined;
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (extensions !== undefined) {
    for (const ext of childrenOf(der, childrenOf(der, extensions)[0]!)) {
      const parts = childrenOf(der, ext);
      if (der.subarray(parts[0]!.start, parts[0]!.end).equals(oid('2.5.29.14'))) {
        const value = parts[parts.length - 1]!;
        const inner = readTlv(der, value.content, value.end);
        keyId = Buffer.from(der.subarray(inner.content, inner.end));
      }
    }
  }
  return { subject: Buffer.from(der.subarray(subject.start, subject.end)), keyId: keyId ?? keyIdOf(cert.publicKey) };
}

/**
 * RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits, what
 * OpenSSL's `subjectKeyIdentifier=hash` computes.
 */
function keyIdOf (publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const [, key] = childrenOf(spki, readTlv(spki, 0, spki.length));
  return createHash('sha1').update(spki.subarray(key!.content + 1, key!.end)).digest();
}

// ---------------------------------------------------------------- signing

/** The signature algorithm for a signing key, and how to sign with it. */
function signer (key: KeyObject): { algorithm: Buffer; sign: (data: Buffer) => Buffer } {
  switch (key.asymmetricKeyType) {
    case 'ec': return { algorithm: seq(oid('1.2.840.10045.4.3.2')), sign: (data) => sign('sha256', data, key) };
    case 'rsa': return { algorithm: seq(oid('1.2.840.113549.1.1.11'), NULL), sign: (data) => sign('sha256', data, key) };
    case 'ed25519': return { algorithm: seq(oid('1.3.101.112')), sign: (data) => sign(null, data, key) };
    default: throw new Error(`cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key (EC, RSA or Ed25519 only)`);
  }
}

/** `SEQUENCE { tbs, algorithm, BIT STRING signature }`: a signed certificate or CRL. */
function signed (tbs: Buffer, algorithm: Buffer, signature: Buffer): Buffer {
  return seq(tbs, algorithm, bits(signature));
}

/** PEM text of DER bytes, ending with a newline so that `cat a.pem b.pem` is a valid bundle. */
export function toPem (label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------- certificates

export type KeyType = 'ec' | 'rsa';

export interface Issuer {
  /** PEM private key of the issuing CA. */
  key: string;
  /** PEM certificate of the issuing CA. */
  cert: string;
}

export interface CertificateSpec {
  cn: string;
  /** A CA (basicConstraints CA:TRUE, keyCertSign and cRLSign) or a peer. */
  ca: boolean;
  notBefore: Date;
  notAfter: Date;
  /** Peers: DNS names, IP addresses and URIs for the subjectAltName. */
  dns?: string[];
  ips?: string[];
  uris?: string[];
  /** Peers: extended key usages. */
  purposes?: Array<'serverAuth' | 'clientAuth'>;
  keyType: KeyType;
  /** Signed by this CA; self-signed without one. */
  issuer?: Issuer;
}

const EKU: Record<'serverAuth' | 'clientAuth', string> = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' };

/** 16 random bytes, top bit clear: a positive serial number that never repeats in practice. */
function serialNumber (): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
}

function ipBytes (ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // Expand '::' then write eight 16-bit groups.
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** A new key pair and a certificate for it, as PEM. */
export async function issueCertificate (spec: CertificateSpec): Promise<{ key: string; cert: string }> {
  const pair = spec.keyType === 'rsa'
    ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
    : await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  const keyId = keyIdOf(pair.publicKey);
  const signingKey = spec.issuer === undefined ? pair.privateKey : createPrivateKey(spec.issuer.key);
  const issuerCert = spec.issuer === undefined ? undefined : new X509Certificate(spec.issuer.cert);
  const issuerFields = issuerCert === undefined ? { subject: commonName(spec.cn), keyId } : certificateFields(issuerCert);
  const extensions: Buffer[] = spec.ca
    ? [
        extension('2.5.29.19', true, seq(bool(true))),
        // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000_0110, one unused bit.
        extension('2.5.29.15', true, bits(Buffer.from([0x06]), 1))
      ]
    : [
        extension('2.5.29.19', false, seq()),
        // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b1010_0000, five unused bits.
        extension('2.5.29.15', true, bits(Buffer.from([0xa0]), 5)),
        extension('2.5.29.37', false, seq(...(spec.purposes ?? ['serverAuth', 'clientAuth']).map((p) => oid(EKU[p])))),
        extension('2.5.29.17', false, seq(
          ...(spec.dns ?? []).map((name) => tlv(0x82, Buffer.from(name, 'ascii'))),
          ...(spec.ips ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
          ...(spec.uris ?? []).map((uri) => tlv(0x86, Buffer.from(uri, 'ascii')))
        ))
      ];
  extensions.push(
    extension('2.5.29.14', false, octets(keyId)),
    // [0] IMPLICIT keyIdentifier: what lets a verifier pick the right one of two CAs.
    extension('2.5.29.35', false, seq(tlv(0x80, issuerFields.keyId)))
  );
  const sig = signer(signingKey);
  const tbs = seq(
    explicit(0, smallInteger(2)),
    integer(serialNumber()),
    sig.algorithm,
    issuerFields.subject,
    seq(time(spec.notBefore), time(spec.notAfter)),
    commonName(spec.cn),
    pair.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions))
  );
  return {
    key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: toPem('CERTIFICATE', signed(tbs, sig.algorithm, sig.sign(tbs)))
  };
}

// ---------------------------------------------------------------- CRLs

export interface RevokedEntry {
  /** Serial number in hex, as X509Certificate#serialNumber gives it. */
  serial: string;
  /** When it was revoked. */
  date: Date;
}

export interface CrlSpec {
  issuer: Issuer;
  revoked: RevokedEntry[];
  /** Increases with every CRL the CA issues. */
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** A version 2 CRL signed by `issuer`, as PEM. */
export function issueCrl (spec: CrlSpec): string {
  const cert = new X509Certificate(spec.issuer.cert);
  const key = createPrivateKey(spec.issuer.key);
  if (!cert.checkPrivateKey(key)) throw new Error('the CA key does not belong to the CA certificate');
  const { subject, keyId } = certificateFields(cert);
  const sig = signer(key);
  const entries = spec.revoked.map((entry) => seq(integer(hexBytes(entry.serial)), time(entry.date)));
  const tbs = seq(
    smallInteger(1),
    sig.algorithm,
    subject,
    time(spec.thisUpdate),
    time(spec.nextUpdate),
    // An empty list is left out, as RFC 5280 5.1.2.6 asks.
    ...(entries.length === 0 ? [] : [seq(...entries)]),
    explicit(0, seq(
      extension('2.5.29.35', false, seq(tlv(0x80, keyId))),
      extension('2.5.29.20', false, smallInteger(spec.number))
    ))
  );
  return toPem('X509 CRL', signed(tbs, sig.algorithm, sig.sign(tbs)));
}
