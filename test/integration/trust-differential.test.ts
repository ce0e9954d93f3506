/**
 * The differential test of the re-check at a rotation (src/tls/trust.ts)
 * against OpenSSL's own verdict at a handshake.
 *
 * For every case of the corpus (test/support/trust-corpus.ts), in both
 * directions:
 * - the transport holds a live connection to a peer presenting the case's
 *   chain, made under material that trusts it; then `setSecureContext()` swaps
 *   in the case's material, and the connection is kept, closed with
 *   ERR_PEER_UNTRUSTED, or the material is refused (a coded throw);
 * - OpenSSL's verdict is a real handshake with that material: a Node TLS
 *   server (inbound: it verifies the peer as a client) or client (outbound: it
 *   verifies the peer as a server) made with exactly that `ca` and `crl`,
 *   over loopback. Cases that move the re-check's clock (a certificate that
 *   expired since the connection was made) take OpenSSL's verdict from
 *   `openssl s_client -attime`, a handshake verified at that instant.
 *
 * They agree when OpenSSL accepts and the connection is kept, or OpenSSL
 * refuses and the connection is closed (or the material is refused up front).
 * Material refused up front that OpenSSL would accept is a deliberate
 * fail-safe only when the case is listed in FAIL_SAFE and its reason appears
 * in SECURITY.md. The matrix is printed after the run (and written to
 * $TRUST_MATRIX when set); test/support/trust-matrix-before.txt and
 * trust-matrix-after.txt record it before and after issue 25's changes.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as tlsCreateServer, rootCertificates, type Server, type TLSSocket } from 'node:tls';
import { HOST, TcpTransport, ca, codeOf, digestFrame, pem, record, until } from '../support/helpers';
import { HAVE_OPENSSL } from '../support/trust-fixtures';
import { trustStore, verifyChain } from '../../src/tls/trust';
import { splitCrls } from '../../src/options/validate';
import { buildCorpus, type Cert } from '../support/trust-corpus';

type Item = string | Buffer;
interface Material { ca?: Item | Item[]; crl?: Item | Item[] }
type Corpus = ReturnType<typeof buildCorpus>;
interface Case {
  name: string;
  chain: (k: Corpus) => Cert[];
  before: (k: Corpus) => Material;
  after: (k: Corpus) => Material;
  /** Days from now at which the re-check is made (the transport's clock, and openssl's -attime). */
  at?: number;
  /** The material is bad in itself: it must be refused up front with this reason (never swapped in). */
  refuse?: string;
}

const DAY = 86400_000;
/** `a` and `b` joined the way `cat` joins files that lack a final newline. */
const glued = (...certs: Cert[]): string => certs.map((cert) => cert.pem.trimEnd()).join('');
const joined = (...certs: Cert[]): string => certs.map((cert) => cert.pem).join('');

const CASES: Case[] = [
  // Chains with intermediates.
  { name: 'chain: leaf issued by the root', chain: (k) => [k.c.direct!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem }) },
  { name: 'chain: leaf and intermediate presented', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem }) },
  { name: 'chain: leaf alone, intermediate and root in ca', chain: (k) => [k.c.leaf!], before: (k) => ({ ca: joined(k.c.root!, k.c.inter!) }), after: (k) => ({ ca: joined(k.c.inter!, k.c.root!) }) },
  { name: 'chain: ca holds the intermediate but not the root', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.inter!.pem }), refuse: 'ca-anchor' },
  { name: 'chain: leaf alone, ca holds the intermediate only', chain: (k) => [k.c.leaf!], before: (k) => ({ ca: joined(k.c.root!, k.c.inter!) }), after: (k) => ({ ca: k.c.inter!.pem }), refuse: 'ca-anchor' },
  { name: 'chain: rotated to an unrelated root', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root2!.pem }) },
  // Cross-signed and renewed intermediates.
  { name: 'cross-signed: presented via root2, ca holds the root', chain: (k) => [k.c.leaf!, k.c.interCross!], before: (k) => ({ ca: [k.c.root!.pem, k.c.root2!.pem] }), after: (k) => ({ ca: k.c.root!.pem }) },
  { name: 'cross-signed: presented via root2, ca holds the root and the intermediate', chain: (k) => [k.c.leaf!, k.c.interCross!], before: (k) => ({ ca: [k.c.root!.pem, k.c.root2!.pem] }), after: (k) => ({ ca: [k.c.root!.pem, k.c.inter!.pem] }) },
  { name: 'cross-signed: presented via the root, ca holds root2 and the cross-signed copy', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root2!.pem, k.c.interCross!.pem] }) },
  { name: 'cross-signed: presented via the root, ca holds root2 only', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: [k.c.root!.pem, k.c.root2!.pem] }), after: (k) => ({ ca: k.c.root2!.pem }) },
  { name: 'renewed intermediate in ca, the old one presented', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root!.pem, k.c.interRenewed!.pem] }) },
  { name: 'renewed intermediate presented, the old one in ca', chain: (k) => [k.c.leaf!, k.c.interRenewed!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root!.pem, k.c.inter!.pem] }) },
  // Expired and not-yet-valid certificates in the new material.
  { name: 'time: expired root in ca', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.rootExpired!.pem }) },
  { name: 'time: not-yet-valid root in ca', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.rootFuture!.pem }) },
  { name: 'time: expired root before its renewal in ca', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.rootExpired!.pem, k.c.root!.pem] }) },
  { name: 'time: expired root after its renewal in ca', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root!.pem, k.c.rootExpired!.pem] }) },
  { name: 'time: expired intermediate in ca, a valid one presented', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root!.pem, k.c.interExpired!.pem] }) },
  { name: 'time: not-yet-valid intermediate in ca, a valid one presented', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root!.pem, k.c.interFuture!.pem] }) },
  { name: 'time: expired intermediate before its renewal in ca', chain: (k) => [k.c.leaf!], before: (k) => ({ ca: [k.c.root!.pem, k.c.inter!.pem] }), after: (k) => ({ ca: [k.c.root!.pem, k.c.interExpired!.pem, k.c.interRenewed!.pem] }) },
  { name: 'time: expired intermediate in ca, leaf alone', chain: (k) => [k.c.leaf!], before: (k) => ({ ca: [k.c.root!.pem, k.c.inter!.pem] }), after: (k) => ({ ca: [k.c.root!.pem, k.c.interExpired!.pem] }) },
  // Certificates that expired (or are not yet valid) by the clock since the handshake.
  { name: 'clock: the leaf has expired', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem }), at: 1200 },
  { name: 'clock: the leaf is not yet valid', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem }), at: -12 },
  { name: 'clock: the presented intermediate has expired', chain: (k) => [k.c.shortLeaf!, k.c.short!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem }), at: 700 },
  { name: 'clock: the presented intermediate is not yet valid', chain: (k) => [k.c.shortLeaf!, k.c.short!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem }), at: -7 },
  { name: 'clock: everything still valid', chain: (k) => [k.c.shortLeaf!, k.c.short!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem }), at: 300 },
  // Two CAs of one name.
  { name: 'same name, no key ids: the issuer first in ca', chain: (k) => [k.c.sameLeaf!], before: (k) => ({ ca: k.c.same1!.pem }), after: (k) => ({ ca: [k.c.same1!.pem, k.c.same2!.pem] }), refuse: 'ca-same-name' },
  { name: 'same name, no key ids: the issuer second in ca', chain: (k) => [k.c.sameLeaf!], before: (k) => ({ ca: k.c.same1!.pem }), after: (k) => ({ ca: [k.c.same2!.pem, k.c.same1!.pem] }), refuse: 'ca-same-name' },
  { name: 'same name, no key ids: one PEM string, the issuer second', chain: (k) => [k.c.sameLeaf!], before: (k) => ({ ca: k.c.same1!.pem }), after: (k) => ({ ca: joined(k.c.same2!, k.c.same1!) }), refuse: 'ca-same-name' },
  { name: 'same name, key ids: the issuer first in ca', chain: (k) => [k.c.kidLeaf!], before: (k) => ({ ca: k.c.kid1!.pem }), after: (k) => ({ ca: [k.c.kid1!.pem, k.c.kid2!.pem] }) },
  { name: 'same name, key ids: the issuer second in ca', chain: (k) => [k.c.kidLeaf!], before: (k) => ({ ca: k.c.kid1!.pem }), after: (k) => ({ ca: joined(k.c.kid2!, k.c.kid1!) }) },
  // How a bundle is written.
  { name: 'bundle: glued without a newline, the issuer first', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: glued(k.c.root!, k.c.root2!) }), refuse: 'ca-unreadable' },
  { name: 'bundle: glued without a newline, the issuer second', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: glued(k.c.root2!, k.c.root!) }), refuse: 'ca-unreadable' },
  { name: 'bundle: three glued, the issuer in the middle', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: glued(k.c.root2!, k.c.root!, k.c.rogue!) }), refuse: 'ca-unreadable' },
  { name: 'bundle: joined with newlines, the issuer second', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: joined(k.c.root2!, k.c.root!) }) },
  { name: 'bundle: CRLF line endings', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: joined(k.c.root2!, k.c.root!).replace(/\n/g, '\r\n') }) },
  { name: 'bundle: an array of PEM strings', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root2!.pem, k.c.root!.pem] }) },
  { name: 'bundle: duplicates', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root!.pem, joined(k.c.root!, k.c.root!)] }) },
  { name: 'bundle: a corrupt block between two good ones', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root2!.pem + '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n' + k.c.root!.pem }), refuse: 'ca-unreadable' },
  { name: 'bundle: the root in DER', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.der }), refuse: 'ca-unreadable' },
  { name: 'bundle: an array of PEM and DER, the issuer in DER', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root2!.pem, k.c.root!.der] }), refuse: 'ca-unreadable' },
  // CRLs.
  { name: 'crl: current CRLs of both CAs', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.inter!] }) },
  { name: 'crl: empty list', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [] }) },
  { name: 'crl: the root\'s CRL, leaf under the root', chain: (k) => [k.c.direct!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: k.crl.root! }) },
  { name: 'crl: the intermediate\'s CRL only', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.inter!] }), refuse: 'crl-missing' },
  { name: 'crl: the root\'s CRL only, leaf under the intermediate', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!] }) },
  { name: 'crl: revoking the leaf', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.interRevokesLeaf!] }) },
  { name: 'crl: revoking a leaf under the root', chain: (k) => [k.c.direct!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.rootRevokesDirect!] }) },
  { name: 'crl: revoking the intermediate', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.rootRevokesInter!, k.crl.inter!] }) },
  { name: 'crl: stale (nextUpdate passed)', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.interStale!] }), refuse: 'crl-expired' },
  { name: 'crl: stale root CRL, leaf under the root', chain: (k) => [k.c.direct!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.rootStale!] }), refuse: 'crl-expired' },
  { name: 'crl: not yet valid (lastUpdate ahead)', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.interFuture!] }), refuse: 'crl-not-yet-valid' },
  { name: 'crl: from the wrong issuer (another root in ca)', chain: (k) => [k.c.direct!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root!.pem, k.c.root2!.pem], crl: [k.crl.root2!] }), refuse: 'crl-missing' },
  { name: 'crl: one from a CA not in ca beside the right ones', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.inter!, k.crl.rogue!] }) },
  { name: 'crl: one for a CA of ca that no chain uses is missing', chain: (k) => [k.c.direct!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: [k.c.root!.pem, k.c.root2!.pem], crl: [k.crl.root!] }), refuse: 'crl-missing' },
  { name: 'crl: a critical extension it does not know', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.interCritical!] }), refuse: 'crl-unsupported' },
  { name: 'crl: a non-critical extension it does not know', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.interNonCritical!] }) },
  { name: 'crl: a delta CRL revoking the leaf beside the base', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.inter!, k.crl.interDeltaRevokesLeaf!] }), refuse: 'crl-unsupported' },
  { name: 'crl: a delta CRL alone', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.interDeltaRevokesLeaf!] }), refuse: 'crl-unsupported' },
  { name: 'crl: issuing distribution point (user certificates only), intermediate in the chain', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.rootOnlyUser!, k.crl.inter!] }), refuse: 'crl-unsupported' },
  { name: 'crl: issuing distribution point (user certificates only), leaf under the root', chain: (k) => [k.c.direct!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.rootOnlyUser!] }), refuse: 'crl-unsupported' },
  // Node reads one CRL per item; the transport hands Node each CRL of such an item separately (splitCrls).
  { name: 'crl: two CRLs in one PEM string, handed to Node one by one', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: k.crl.root! + k.crl.inter! }) },
  { name: 'crl: in DER', chain: (k) => [k.c.direct!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.pki.crlDer(k.crl.root!)] }), refuse: 'crl-unreadable' },
  { name: 'crl: duplicates', chain: (k) => [k.c.leaf!, k.c.inter!], before: (k) => ({ ca: k.c.root!.pem }), after: (k) => ({ ca: k.c.root!.pem, crl: [k.crl.root!, k.crl.inter!, k.crl.inter!] }) },
  { name: 'crl: a same-name CA\'s CRL only', chain: (k) => [k.c.sameLeaf!], before: (k) => ({ ca: k.c.same1!.pem }), after: (k) => ({ ca: k.c.same1!.pem, crl: [k.crl.same2!] }), refuse: 'crl-signature' },
  { name: 'crl: CRLs of two same-name CAs without key ids', chain: (k) => [k.c.sameLeaf!], before: (k) => ({ ca: k.c.same1!.pem }), after: (k) => ({ ca: [k.c.same1!.pem, k.c.same2!.pem], crl: [k.crl.same2!, k.crl.same1!] }), refuse: 'ca-same-name' },
  { name: 'crl: a same-name CA revokes the serial of the other\'s leaf', chain: (k) => [k.c.sameLeaf!], before: (k) => ({ ca: k.c.same1!.pem }), after: (k) => ({ ca: [k.c.same1!.pem, k.c.same2!.pem], crl: [k.crl.same1!, k.crl.same2RevokesSameLeaf!] }), refuse: 'ca-same-name' },
  { name: 'crl: CRLs of two same-name CAs with key ids', chain: (k) => [k.c.kidLeaf!], before: (k) => ({ ca: k.c.kid1!.pem }), after: (k) => ({ ca: [k.c.kid1!.pem, k.c.kid2!.pem], crl: [k.crl.kid2!, k.crl.kid1!] }), refuse: 'crl-duplicate-issuer' }
];

/**
 * Material refused up front although OpenSSL would accept the peer of the
 * case: deliberate (see SECURITY.md, "Trust material refused up front"), each
 * with the `reason` of its ERR_TRUST_MATERIAL.
 */
const FAIL_SAFE: Record<string, string> = {
  'same name, no key ids: the issuer first in ca': 'ca-same-name',
  'crl: a same-name CA revokes the serial of the other\'s leaf': 'ca-same-name',
  'crl: one for a CA of ca that no chain uses is missing': 'crl-missing',
  'crl: a delta CRL revoking the leaf beside the base': 'crl-unsupported'
};

type OpenSslVerdict = { accept: true } | { accept: false; code: string };
type TransportVerdict = { kind: 'kept' } | { kind: 'closed'; reason: string } | { kind: 'refused'; code: string; reason: string };
interface Row { name: string; direction: string; openssl: OpenSslVerdict; transport: TransportVerdict; alone: string; result: string }

function describeOpenSsl (v: OpenSslVerdict): string {
  return v.accept ? 'accept' : `refuse ${v.code}`;
}

function describeTransport (v: TransportVerdict): string {
  if (v.kind === 'kept') return 'kept';
  if (v.kind === 'closed') return `closed ${v.reason}`;
  return `refused ${v.code}${v.reason === '' ? '' : ` (${v.reason})`}`;
}

function judge (c: Case, openssl: OpenSslVerdict, transport: TransportVerdict): string {
  const name = c.name;
  if (c.refuse !== undefined && (transport.kind !== 'refused' || transport.reason !== c.refuse)) return `DISAGREE (not refused up front as ${c.refuse})`;
  if (transport.kind === 'refused') {
    if (transport.code !== 'ERR_TRUST_MATERIAL') return 'DISAGREE (refused without a code)';
    if (!openssl.accept) return 'agree (refused up front)';
    return FAIL_SAFE[name] === transport.reason ? 'fail-safe (refused up front, listed)' : 'DISAGREE (refused what OpenSSL accepts)';
  }
  if (openssl.accept) return transport.kind === 'kept' ? 'agree' : 'DISAGREE (closed an accepted peer)';
  return transport.kind === 'closed' ? 'agree' : 'DISAGREE (kept a refused peer)';
}

/**
 * The re-check's own verdict on the material without the up-front refusal
 * (verifyChain over the store Node would read, at the case's instant): it
 * must follow OpenSSL too, so that each of its rules is tested even where
 * the material is refused before it could matter.
 */
function recheckAlone (k: Corpus, c: Case): string {
  const { X509Certificate } = require('node:crypto') as typeof import('node:crypto');
  const material = handed(c.after(k));
  try {
    const store = trustStore(material.ca, material.crl, rootCertificates);
    const problem = verifyChain(c.chain(k).map((cert) => new X509Certificate(cert.pem)), store, Date.now() + (c.at ?? 0) * DAY);
    return problem === undefined ? 'accept' : problem;
  } catch (error) {
    return `unreadable: ${(error as Error).message}`;
  }
}

/**
 * Material as the transport hands it to Node: a `crl` item holding several
 * CRLs split into one item each (Node would read only the first). OpenSSL's
 * verdict is taken on that, the material the transport's handshakes use.
 */
function handed (material: Material): Material {
  return material.crl === undefined ? material : { ...material, crl: splitCrls(material.crl) as never };
}

/** Runs `fn` with the transport's clock `days` ahead (Date.now only: OpenSSL's clock is not touched). */
function atDay<T> (days: number | undefined, fn: () => T): T {
  if (days === undefined) return fn();
  const real = Date.now;
  const shifted = real() + days * DAY;
  Date.now = () => shifted;
  try {
    return fn();
  } finally {
    Date.now = real;
  }
}

function chainPem (chain: Cert[]): string {
  return chain.map((cert) => cert.pem).join('');
}

function tick (): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function closeServer (server: Server): Promise<void> {
  await new Promise((resolve) => server.close(resolve));
}

async function closeTransport (t: TcpTransport): Promise<void> {
  await new Promise<void>((resolve) => t.close(resolve));
}

/** Rotates `t` to `material` (its clock at `at`), and reads what became of its one live connection. */
async function rotate (t: TcpTransport, errors: Error[], material: Material, at: number | undefined): Promise<TransportVerdict> {
  try {
    atDay(at, () => t.setSecureContext(material as never));
  } catch (error) {
    return { kind: 'refused', code: codeOf(error) ?? `uncoded: ${(error as Error).message}`, reason: String((error as { reason?: string }).reason ?? '') };
  }
  // The re-check is synchronous; one turn lets any report be emitted.
  await tick();
  const untrusted = errors.find((e) => codeOf(e) === 'ERR_PEER_UNTRUSTED') as (Error & { reason: string }) | undefined;
  return untrusted === undefined ? { kind: 'kept' } : { kind: 'closed', reason: untrusted.reason };
}

/** OpenSSL at `days` from now, by `openssl s_client -attime`, verifying the server at `port` against `material`. */
async function opensslAt (k: Corpus, days: number, port: number, material: Material): Promise<OpenSslVerdict> {
  const list = (v: Item | Item[] | undefined): Item[] => v === undefined ? [] : Array.isArray(v) ? v : [v];
  const caFile = k.pki.file(`attime-ca-${port}.pem`, list(material.ca).map(String).join('\n'));
  const args = ['s_client', '-connect', `${HOST}:${port}`, '-attime', String(Math.floor((Date.now() + days * DAY) / 1000)),
    '-CAfile', caFile, '-verify_return_error', '-verify_ip', HOST, '-brief'];
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: 10000 }, (error, _stdout, stderr) => {
      if (error === null) return resolve({ accept: true });
      const match = /verify error:num=\d+:([^\n]+)/.exec(stderr) ?? /Verification error: ([^\n]+)/.exec(stderr);
      resolve({ accept: false, code: match?.[1]?.trim() ?? `s_client exit ${String(error.code)}` });
    });
    child.stdin?.end();
  });
}

/** Inbound: the transport verifies the peer as a client. */
async function inbound (k: Corpus, c: Case): Promise<[OpenSslVerdict, TransportVerdict]> {
  const chain = c.chain(k);
  const own = pem('peer-1');
  const client = { host: HOST, cert: chainPem(chain), key: chain[0]!.key, ca: ca() };
  // The live connection, under material that trusts the peer.
  const t = new TcpTransport({ host: HOST, port: 0, tls: { ...own, ...c.before(k), requestCert: true } as never });
  const seen = record(t);
  await new Promise<void>((resolve) => t.listen(resolve));
  const socket = tlsConnect({ ...client, port: t.port });
  socket.on('error', () => {});
  try {
    socket.once('secureConnect', () => socket.write(digestFrame('diff') + '\n'));
    await until(() => seen.digests.length === 1 || seen.errors.length > 0, 5000, 'the live connection');
    expect(seen.errors, 'the live connection is made').to.deep.equal([]);
    const transport = await rotate(t, seen.errors, c.after(k), c.at);
    let openssl: OpenSslVerdict;
    if (c.at !== undefined) {
      // OpenSSL at that instant: the same chain, served to openssl s_client.
      openssl = await serving(chain, (port) => opensslAt(k, c.at!, port, c.after(k)));
    } else {
      openssl = await handshakeAsServer(own, c.after(k), client);
    }
    return [openssl, transport];
  } finally {
    socket.destroy();
    await closeTransport(t);
  }
}

/** OpenSSL's verdict on a client presenting `client`, by a Node TLS server holding `material`. */
async function handshakeAsServer (own: { key: string; cert: string }, material: Material, client: Record<string, unknown>): Promise<OpenSslVerdict> {
  let server: Server;
  try {
    server = tlsCreateServer({ ...own, ...handed(material), requestCert: true, rejectUnauthorized: true } as never);
  } catch (error) {
    return { accept: false, code: `material unusable: ${(error as Error).message}` };
  }
  try {
    const verdict = new Promise<OpenSslVerdict>((resolve) => {
      server.on('secureConnection', (s: TLSSocket) => {
        resolve({ accept: true });
        s.destroy();
      });
      server.on('tlsClientError', (error: NodeJS.ErrnoException, s: TLSSocket) => resolve({ accept: false, code: String(s.authorizationError ?? error.code) }));
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    const socket = tlsConnect({ ...client, port: (server.address() as { port: number }).port } as never);
    socket.on('error', () => {});
    try {
      return await verdict;
    } finally {
      socket.destroy();
    }
  } finally {
    await closeServer(server);
  }
}

/** Serves `chain` on a Node TLS server while `fn` runs. */
async function serving<T> (chain: Cert[], fn: (port: number) => Promise<T>): Promise<T> {
  const server = tlsCreateServer({ cert: chainPem(chain), key: chain[0]!.key }, (s) => {
    s.on('error', () => {});
    s.resume();
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  try {
    return await fn((server.address() as { port: number }).port);
  } finally {
    await closeServer(server);
  }
}

/** Outbound: the transport verifies the peer as a server. */
async function outbound (k: Corpus, c: Case): Promise<[OpenSslVerdict, TransportVerdict]> {
  const chain = c.chain(k);
  return serving(chain, async (port) => {
    const t = new TcpTransport({ host: HOST, port: 0, keepAlive: true, tls: { ...pem('peer-1'), ...c.before(k) } as never });
    const seen = record(t);
    try {
      t.digest({ id: 'peer', transport: { host: HOST, port } }, { id: 'self' } as never, []);
      await until(() => t.stats().frames.out === 1 || seen.errors.length > 0, 5000, 'the live connection');
      expect(seen.errors, 'the live connection is made').to.deep.equal([]);
      const transport = await rotate(t, seen.errors, c.after(k), c.at);
      let openssl: OpenSslVerdict;
      if (c.at !== undefined) {
        openssl = await opensslAt(k, c.at, port, c.after(k));
      } else {
        openssl = await handshakeAsClient(port, c.after(k));
      }
      return [openssl, transport];
    } finally {
      await closeTransport(t);
    }
  });
}

/** OpenSSL's verdict on the server at `port`, by a Node TLS client holding `material`. */
async function handshakeAsClient (port: number, material: Material): Promise<OpenSslVerdict> {
  let socket: TLSSocket;
  try {
    socket = tlsConnect({ host: HOST, port, ...handed(material) } as never);
  } catch (error) {
    return { accept: false, code: `material unusable: ${(error as Error).message}` };
  }
  try {
    return await new Promise<OpenSslVerdict>((resolve) => {
      socket.once('secureConnect', () => resolve({ accept: true }));
      socket.once('error', (error: NodeJS.ErrnoException) => resolve({ accept: false, code: String(error.code) }));
    });
  } finally {
    socket.destroy();
  }
}

(HAVE_OPENSSL ? describe : describe.skip)('trust re-check against OpenSSL (differential)', function () {
  this.timeout(30000);
  let k: Corpus;
  const rows: Row[] = [];

  before(function () {
    k = buildCorpus();
  });

  after(function () {
    k?.pki.dispose();
    const width = Math.max(...rows.map((r) => r.name.length));
    const lines = rows.map((r) => `${r.name.padEnd(width)}  ${r.direction.padEnd(8)}  ${describeOpenSsl(r.openssl).padEnd(34)}  ${describeTransport(r.transport).padEnd(48)}  ${r.result.padEnd(40)}  ${r.alone}`);
    const agree = rows.filter((r) => !r.result.startsWith('DISAGREE')).length;
    const alone = rows.filter((r) => (r.alone === 'accept') === r.openssl.accept).length;
    const text = [`${'case'.padEnd(width)}  direction  ${'openssl'.padEnd(34)}  ${'transport'.padEnd(48)}  ${'result'.padEnd(40)}  re-check alone`, ...lines,
      `${agree} of ${rows.length} agree (or are refused up front as listed)`,
      `re-check alone (no up-front refusal): ${alone} of ${rows.length} give OpenSSL's verdict`].join('\n');
    if (process.env.TRUST_MATRIX !== undefined) writeFileSync(process.env.TRUST_MATRIX, text + '\n');
    else console.log(text);
  });

  for (const c of CASES) {
    for (const direction of ['inbound', 'outbound'] as const) {
      it(`${c.name} [${direction}]`, async () => {
        const [openssl, transport] = await (direction === 'inbound' ? inbound : outbound)(k, c);
        const result = judge(c, openssl, transport);
        const alone = recheckAlone(k, c);
        rows.push({ name: c.name, direction, openssl, transport, alone, result });
        expect(result, `OpenSSL: ${describeOpenSsl(openssl)}; transport: ${describeTransport(transport)}`).to.not.match(/^DISAGREE/);
        // The re-check itself follows OpenSSL even where the material is refused up front (defence in depth).
        expect(alone === 'accept', `re-check alone: ${alone}; OpenSSL: ${describeOpenSsl(openssl)}`).to.equal(openssl.accept);
      });
    }
  }

  it('lists every fail-safe refusal in SECURITY.md', () => {
    const security = readFileSync(join(__dirname, '..', '..', '..', 'SECURITY.md'), 'utf8');
    for (const [name, reason] of Object.entries(FAIL_SAFE)) {
      expect(security, `SECURITY.md names the refusal of "${name}"`).to.include(`\`${reason}\``);
    }
  });
});
