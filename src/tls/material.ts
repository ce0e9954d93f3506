/**
 * The one check of `ca` and `crl` material where it enters: the constructor's
 * `tls` (src/options/validate.ts), `setSecureContext()` (SocketFactory.rotate)
 * and `watchCertificates()` (cert-files validateSet).
 *
 * It refuses, before anything is swapped in, two kinds of material:
 * - material OpenSSL would read otherwise than the re-check at a rotation
 *   (src/tls/trust.ts) reads it, so that the two can only agree: a bundle
 *   whose PEM blocks do not all parse (OpenSSL stops at the first bad one,
 *   silently), a CRL item holding several CRLs or none that parses, CRL
 *   features OpenSSL applies in its own way (delta CRLs, issuing distribution
 *   points, unknown critical extensions), two CRLs of one issuer, two CAs of
 *   one name that certificates cannot tell apart;
 * - material with which OpenSSL would refuse every certificate it covers: a
 *   CRL past its nextUpdate (CRL_HAS_EXPIRED) or before its thisUpdate, a CRL
 *   that its CA did not sign, a CA with no CRL of its own while `crl` is set
 *   (UNABLE_TO_GET_CRL for everything it issued), a CA in `ca` that cannot
 *   anchor a chain (neither self-signed nor issued by another CA of `ca`).
 *
 * Where OpenSSL would accept some peers with material refused here, the
 * refusal is deliberate and listed in SECURITY.md ("Trust material refused up
 * front"); the differential test (test/integration/trust-differential.test.ts)
 * lists those cases too.
 */
import type { X509Certificate } from 'node:crypto';
import { TrustMaterialError } from '../errors';
import { asList, certInfo, readCaItem, readCrlItem, type Crl, type Material } from './trust';

const KU_CRL_SIGN = 0x02;

/** Where the material came from, for messages: e.g. 'tls' or 'setSecureContext(tlsOptions)'. */
function item (where: string, option: string, list: readonly unknown[], index: number): string {
  return list.length === 1 ? `${where}.${option}` : `${where}.${option}[${index}]`;
}

function name (cert: X509Certificate): string {
  return JSON.stringify(cert.subject.replace(/\n/g, ', '));
}

function day (ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Checks `ca` and `crl` as they would be installed together (a rotation's
 * new values merged over the current ones); throws TrustMaterialError
 * naming the option and the reason.
 */
export function checkTrustMaterial (ca: Material, crl: Material, where: string, now = Date.now()): void {
  const crlItems = asList(crl);
  if (crlItems.length > 0 && ca === undefined) {
    throw new TrustMaterialError('crl-missing', `${where}.crl is set without ${where}.ca: OpenSSL would need a CRL from every CA of every chain, Node's bundled roots included`);
  }
  const cas: X509Certificate[] = [];
  if (ca !== undefined) {
    const items = asList(ca);
    if (items.length === 0) throw new TrustMaterialError('ca-unreadable', `${where}.ca is an empty list: OpenSSL would trust no CA at all (and not fall back to Node's roots)`);
    items.forEach((value, i) => {
      const read = readCaItem(value);
      const label = item(where, 'ca', items, i);
      if (read.failure !== undefined || read.markers !== read.certificates.length || read.certificates.length === 0) {
        const why = read.failure ?? (read.markers === 0 ? 'no PEM certificate in it (DER is not read)' : 'a BEGIN CERTIFICATE marker is not at the start of its own line (a file without a final newline joined to the next?)');
        throw new TrustMaterialError('ca-unreadable', `${label}: OpenSSL reads ${read.certificates.length} certificate(s) of ${read.markers} in it: ${why}. Put each PEM block on its own lines`);
      }
      for (const cert of read.certificates) {
        if (!cas.some((known) => known.fingerprint256 === cert.fingerprint256)) cas.push(cert);
      }
    });
    checkAnchors(cas, where);
  }
  const crls: Crl[] = [];
  crlItems.forEach((value, i) => {
    const label = item(where, 'crl', crlItems, i);
    const read = readCrlItem(value);
    if (read.failure !== undefined || read.crl === undefined) {
      throw new TrustMaterialError('crl-unreadable', `${label}: ${read.failure ?? 'no CRL'}${Buffer.isBuffer(value) && read.markers === 0 ? ' (Node reads PEM CRLs only; convert with `openssl crl -inform DER -outform PEM`)' : ''}`);
    }
    if (read.markers !== 1) throw new TrustMaterialError('crl-unreadable', `${label} holds ${read.markers} CRLs; Node reads only the first of an item: pass one CRL per array element`);
    const parsed = read.crl;
    if (parsed.unsupported !== undefined) {
      throw new TrustMaterialError('crl-unsupported', `${label} has ${parsed.unsupported}, which OpenSSL applies by rules of its own (a delta CRL alone is read as a full one, beside its base it is ignored); issue a full CRL without it`);
    }
    if (parsed.thisUpdate > now) throw new TrustMaterialError('crl-not-yet-valid', `${label} is not valid before ${day(parsed.thisUpdate)}: OpenSSL would refuse every certificate of its CA until then (CRL_NOT_YET_VALID)`);
    if (parsed.nextUpdate !== undefined && parsed.nextUpdate < now) {
      throw new TrustMaterialError('crl-expired', `${label} expired at its nextUpdate ${day(parsed.nextUpdate)}: OpenSSL would refuse every certificate of its CA (CRL_HAS_EXPIRED); issue a fresh CRL`);
    }
    const same = crls.find((known) => known.issuer === parsed.issuer);
    if (same !== undefined) {
      if (same.der.equals(parsed.der)) return;
      throw new TrustMaterialError('crl-duplicate-issuer', `${label} is a second CRL of one issuer: OpenSSL uses only one of them (the newest, or the first); keep the current one`);
    }
    // Signed by the CA of that name in `ca`, if there is one (one for a peer's intermediate is checked when used).
    const named = cas.filter((cert) => certInfo(cert).subject === parsed.issuer);
    if (named.length > 0 && !named.some((cert) => parsed.signedBy(cert))) {
      throw new TrustMaterialError('crl-signature', `${label} names ${name(named[0]!)} as issuer but that CA did not sign it: OpenSSL would refuse every certificate of that CA (CRL_SIGNATURE_FAILURE)`);
    }
    crls.push(parsed);
  });
  if (crlItems.length > 0) {
    // With any CRL, OpenSSL needs one from the issuer of every certificate of a chain, the root included.
    for (const cert of cas) {
      const info = certInfo(cert);
      if (!cert.ca && !cert.checkIssued(cert)) continue;
      if (!crls.some((c) => c.issuer === info.subject)) {
        throw new TrustMaterialError('crl-missing', `${where}.crl has no CRL from ${name(cert)} of ${where}.ca: with any CRL set, OpenSSL refuses every certificate that CA issued (UNABLE_TO_GET_CRL); add its CRL, even an empty one`);
      }
      if (info.keyUsage !== undefined && (info.keyUsage & KU_CRL_SIGN) === 0) {
        throw new TrustMaterialError('crl-signature', `${name(cert)} of ${where}.ca may not sign CRLs (keyUsage without cRLSign): OpenSSL would refuse every certificate it issued (KEYUSAGE_NO_CRL_SIGN)`);
      }
    }
  }
}

function issuedBy (cert: X509Certificate, parent: X509Certificate): boolean {
  try {
    return cert.checkIssued(parent) && cert.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/**
 * Every CA of `ca` must be able to end a chain: OpenSSL trusts a chain only
 * when it ends at a self-signed certificate of `ca`. And two CAs of one name
 * must carry subject key identifiers, or a certificate they issued cannot say
 * which of them did: OpenSSL tries only the first (CERT_SIGNATURE_FAILURE).
 */
function checkAnchors (cas: X509Certificate[], where: string): void {
  const anchored = new Set<X509Certificate>(cas.filter((cert) => cert.checkIssued(cert)));
  for (let grew = true; grew;) {
    grew = false;
    for (const cert of cas) {
      if (anchored.has(cert)) continue;
      if (cas.some((parent) => anchored.has(parent) && issuedBy(cert, parent))) {
        anchored.add(cert);
        grew = true;
      }
    }
  }
  for (const cert of cas) {
    if (!anchored.has(cert)) {
      throw new TrustMaterialError('ca-anchor', `${name(cert)} in ${where}.ca is not self-signed and its issuer is not in ${where}.ca: OpenSSL ends no chain there (UNABLE_TO_GET_ISSUER_CERT); add the root it chains to`);
    }
  }
  for (let i = 0; i < cas.length; i++) {
    for (let j = i + 1; j < cas.length; j++) {
      const a = certInfo(cas[i]!);
      const b = certInfo(cas[j]!);
      if (a.subject === b.subject && (a.skid === undefined || b.skid === undefined)) {
        throw new TrustMaterialError('ca-same-name', `${where}.ca holds two CAs named ${name(cas[i]!)} without subject key identifiers: OpenSSL tries only the first for every certificate of that name (CERT_SIGNATURE_FAILURE); give each CA its own name, or key identifiers`);
      }
    }
  }
}

/** True for what `ca` and `crl` may be: undefined, a string, a Buffer, or an array of them (anything else is left to Node's own error). */
export function isMaterial (value: unknown): value is Material {
  const one = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);
  return value === undefined || one(value) || (Array.isArray(value) && value.every(one));
}
