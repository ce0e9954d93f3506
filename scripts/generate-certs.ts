#!/usr/bin/env node
/**
 * Certificates for a development or staging cluster, written with Node's
 * crypto alone (scripts/pki.ts): no openssl, no dependency.
 *
 * Shipped as the `gossipmonger-tls-certs` command: `--peer NAME[=HOST,...]`
 * writes a CA and one certificate per named peer (CN = the gossipmonger id,
 * SAN = the hosts it is reached on, serverAuth + clientAuth); `--revoke NAME`
 * writes a CRL from the folder's CA. Without `--peer` it writes this
 * repository's test and demo set (peer-1..N and hostile fixtures) into certs/,
 * which is never committed.
 *
 * Made to rotate: every CA it makes has a subject of its own (a date and a
 * random suffix) and a subject key identifier, every certificate names its
 * issuer's key, and every PEM file ends with a newline, so two folders' CAs
 * can be trusted together (`cat old/ca.crt new/ca.crt`).
 *
 * Made for a folder others might touch: nothing is written through a symbolic
 * link or into a file someone else owns; each file is created under a new
 * random name with its final mode (0600 for keys) and renamed into place; a
 * CA already in the folder is used only with --reuse-ca, after checking that
 * its files are this user's own and its key is not readable by others.
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { issueCertificate, issueCrl, type KeyType, type RevokedEntry } from './pki';

export type { KeyType } from './pki';

export interface CertOptions {
  /** Output directory. @default certs/ next to package.json */
  dir?: string;
  /** Peer certificates signed by the CA. @default 5 */
  peers?: number;
  /** @default 'ec' (ECDSA P-256) */
  keyType?: KeyType;
  /** Regenerate even when every file is present and valid, CA included. @default false */
  force?: boolean;
  /**
   * Named peers (a user's cluster) instead of the test set: each gets a
   * certificate with CN = its name and SANs = its hosts plus `hosts`.
   */
  named?: NamedPeer[];
  /** Hosts (DNS names or IP addresses) added to every named peer's SAN. */
  hosts?: string[];
  /** Validity of CA and peer certificates, in days. @default 365 */
  days?: number;
  /** Named peers: issue from the CA already in the folder (refused without it). */
  reuseCa?: boolean;
  /** Revoke these peers (NAME.crt in the folder) and write the folder's CRL. */
  revoke?: string[];
  /** Write the folder's CRL again (a new nextUpdate), revoking nothing new. */
  crl?: boolean;
  /** Days until the CRL's nextUpdate. @default 30 */
  crlDays?: number;
}

export interface NamedPeer {
  /** The gossipmonger id: the certificate's CN. */
  name: string;
  /** DNS names and IP addresses this peer is reached on (what it advertises as `host`). */
  hosts: string[];
}

export interface Pem {
  key: string;
  cert: string;
}

export interface Subject {
  cn: string;
  dns?: string[];
  ips?: string[];
  uris?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Extended key usages. @default both: one certificate serves as server and as client */
  purposes?: Array<'serverAuth' | 'clientAuth'>;
}

/** Which CA a run used: what the command prints, so the operator can check it. */
export interface CaInfo {
  subject: string;
  fingerprint256: string;
  /** True when this run made it; false when it was already in the folder. */
  created: boolean;
}

/** The tool declines to go on (a CA it was not asked to reuse, a file it does not own): exit code 2. */
export class RefusedError extends Error {}

const DAY = 24 * 60 * 60 * 1000;
export const DEFAULT_CERT_DIR = resolve(__dirname, '..', '..', 'certs');

/** Back-dated a minute: a peer whose clock is a little behind still accepts a new certificate. */
const backdated = (): Date => new Date(Date.now() - 60 * 1000);

/**
 * A CA that may sign certificates and CRLs and nothing else: self-signed, or
 * an intermediate signed by `issuer`.
 */
export async function makeCa (cn: string, keyType: KeyType = 'ec', days = 365, issuer?: Pem): Promise<Pem> {
  return issueCertificate({ cn, ca: true, notBefore: backdated(), notAfter: new Date(Date.now() + days * DAY), keyType, ...(issuer === undefined ? {} : { issuer }) });
}

/** A peer certificate for both ends of a connection (serverAuth + clientAuth), signed by `ca`. */
export async function makePeer (ca: Pem, subject: Subject, keyType: KeyType = 'ec'): Promise<Pem> {
  return issueCertificate({
    cn: subject.cn,
    ca: false,
    notBefore: subject.notBefore ?? backdated(),
    notAfter: subject.notAfter ?? new Date(Date.now() + 365 * DAY),
    dns: subject.dns ?? [],
    ips: subject.ips ?? [],
    uris: subject.uris ?? [],
    purposes: subject.purposes ?? ['serverAuth', 'clientAuth'],
    keyType,
    issuer: ca
  });
}

/**
 * A CA name no other run gives: two CAs of one name cannot be told apart by
 * a verifier that matches issuers by name, so each gets the day it was made
 * and a random suffix.
 */
export function uniqueCaName (base: string): string {
  return `${base} ${new Date().toISOString().slice(0, 10)} ${randomBytes(4).toString('hex')}`;
}

/** SANs of every loopback peer: the names a test or the demo connects to. */
export const LOOPBACK = { dns: ['localhost'], ips: ['127.0.0.1', '::1'] };

/** The identity URI a peer certificate carries besides its CN. */
export function peerUri (name: string): string {
  return `spiffe://gossipmonger.test/${name}`;
}

// ---------------------------------------------------------------- files others may have touched

const uid = (): number | undefined => process.getuid?.();

/**
 * The output folder, created 0700 when missing. An existing one must be a
 * folder of this user that others cannot write to: whoever can write in it
 * can replace a key after it is written.
 */
function prepareDir (dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stats = statSync(dir);
  if (!stats.isDirectory()) throw new RefusedError(`${dir} is not a folder`);
  const me = uid();
  if (me !== undefined && stats.uid !== me) throw new RefusedError(`${dir} belongs to another user (uid ${stats.uid}): they could replace the keys written there; use a folder of your own`);
  if ((stats.mode & 0o002) !== 0) throw new RefusedError(`${dir} is writable by every user (mode ${(stats.mode & 0o777).toString(8)}): anyone could replace the keys written there; chmod o-w it or use another folder`);
}

/**
 * Why the file at `path` may not be replaced: it is a symbolic link, or
 * another user's (planted). Undefined when it is absent or this user's own
 * regular file.
 */
function plantedReason (path: string): string | undefined {
  let stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (stats.isSymbolicLink()) return `${path} is a symbolic link`;
  if (!stats.isFile()) return `${path} is not a regular file`;
  const me = uid();
  if (me !== undefined && stats.uid !== me) return `${path} belongs to another user (uid ${stats.uid})`;
  return undefined;
}

/**
 * Writes `contents` to `dir/name` without ever writing through a link or into
 * a file that exists: a new file of a random name, created exclusively with
 * its final mode (O_EXCL | O_NOFOLLOW), written, flushed, then renamed over
 * the name (a rename replaces a directory entry; it never follows it).
 */
function writeFileSafely (dir: string, name: string, contents: string, mode: number): void {
  const path = join(dir, name);
  const planted = plantedReason(path);
  if (planted !== undefined) throw new RefusedError(`${planted}: not overwriting it; remove it if you trust it to go`);
  const temporary = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), mode);
  try {
    // The umask may only have removed bits; the mode is exact before the first byte.
    fchmodSync(fd, mode);
    const bytes = Buffer.from(contents, 'utf8');
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temporary);
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, path);
}

function writePem (dir: string, name: string, pem: Pem): void {
  // Private keys readable by the owner only, from their first byte.
  writeFileSafely(dir, `${name}.key`, pem.key, 0o600);
  writeFileSafely(dir, `${name}.crt`, pem.cert, 0o644);
}

/**
 * Reads `dir/name` if it is this user's own regular file, without following
 * a link; undefined when it does not exist. A key (`secret`) must not be
 * readable or writable by anyone else, a certificate not writable by others.
 */
function readOwnFile (dir: string, name: string, secret: boolean): string | undefined {
  const path = join(dir, name);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new RefusedError(`${path} is a symbolic link: not reading it`);
    throw error;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new RefusedError(`${path} is not a regular file`);
    const me = uid();
    if (me !== undefined && stats.uid !== me) throw new RefusedError(`${path} belongs to another user (uid ${stats.uid}): not using it`);
    const mode = stats.mode & 0o777;
    if (secret && (mode & 0o077) !== 0) throw new RefusedError(`${path} is readable or writable by other users (mode ${mode.toString(8)}): it may not be secret any more; not using it`);
    if (!secret && (mode & 0o022) !== 0) throw new RefusedError(`${path} is writable by other users (mode ${mode.toString(8)}): not using it`);
    const buffer = Buffer.alloc(stats.size);
    for (let at = 0; at < buffer.length;) {
      const n = readSync(fd, buffer, at, buffer.length - at, at);
      if (n === 0) break;
      at += n;
    }
    return buffer.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Both files of `name`, read with readOwnFile; undefined when either is missing. */
function readOwnPem (dir: string, name: string): Pem | undefined {
  const cert = readOwnFile(dir, `${name}.crt`, false);
  const key = readOwnFile(dir, `${name}.key`, true);
  return cert === undefined || key === undefined ? undefined : { cert, key };
}

/** Subject and SHA-256 fingerprint of a certificate, as the command prints them. */
function describeCa (cert: string, created: boolean): CaInfo {
  const x509 = new X509Certificate(cert);
  return { subject: x509.subject.replace(/\n/g, ', '), fingerprint256: x509.fingerprint256, created };
}

/**
 * True when `pem` is a usable certificate for at least another day (unless
 * `mayBeExpired`), its key belongs to it and, with `ca`, `ca` issued it.
 */
function usable (pem: Pem | undefined, mayBeExpired = false, ca?: Pem): boolean {
  if (pem === undefined) return false;
  try {
    const cert = new X509Certificate(pem.cert);
    if (!cert.checkPrivateKey(createPrivateKey(pem.key))) return false;
    if (ca !== undefined) {
      const issuer = new X509Certificate(ca.cert);
      if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return false;
    }
    return mayBeExpired || Date.parse(cert.validTo) >= Date.now() + DAY;
  } catch {
    return false;
  }
}

/** Names of the files a complete set has (without extension). */
export function certNames (peers: number): string[] {
  const names = ['ca', 'rogue-ca', 'rogue-peer', 'expired-peer', 'wrong-name-peer', 'next-ca', 'next-peer-1', 'next-peer-2'];
  for (let i = 1; i <= peers; i++) names.push(`peer-${i}`);
  return names;
}

/** True when NAME.crt and NAME.key are this user's, match, and the certificate is valid for at least another day. */
function isValid (dir: string, name: string, mayBeExpired = false): boolean {
  try {
    return usable(readOwnPem(dir, name), mayBeExpired);
  } catch {
    // A planted or unreadable file is not valid: writing over it then refuses, saying why.
    return false;
  }
}

/** True when every file is there and no certificate expires within a day (except the expired fixture). */
export function isComplete (dir: string, peers: number): boolean {
  return certNames(peers).every((name) => isValid(dir, name, name === 'expired-peer'));
}

export interface CertResult {
  dir: string;
  generated: boolean;
  /** Named peers: what this run wrote ('ca' and peer names). */
  written?: string[];
  /** The CA the certificates were issued from. */
  ca?: CaInfo;
}

/**
 * Writes whatever is missing or about to expire; returns the directory and
 * whether anything was written. In the test set a valid CA is kept, so adding
 * peers (the demo's --peers) never invalidates certificates that tests or
 * peers already hold.
 */
export async function generateCerts (options: CertOptions = {}): Promise<CertResult> {
  if (options.named !== undefined) return generateNamed(options, options.named);
  const dir = options.dir ?? DEFAULT_CERT_DIR;
  const peers = options.peers ?? 5;
  const keyType = options.keyType ?? 'ec';
  const force = options.force === true;
  if (!force && isComplete(dir, peers)) return { dir, generated: false, ca: describeCa(readOwnFile(dir, 'ca.crt', false)!, false) };
  prepareDir(dir);
  const need = (name: string, mayBeExpired = false): boolean => force || !isValid(dir, name, mayBeExpired);

  const caFresh = need('ca');
  const ca = caFresh ? await makeCa(uniqueCaName('gossipmonger test CA'), keyType) : readOwnPem(dir, 'ca')!;
  if (caFresh) writePem(dir, 'ca', ca);
  for (let i = 1; i <= peers; i++) {
    const name = `peer-${i}`;
    if (caFresh || need(name)) writePem(dir, name, await makePeer(ca, { cn: name, ...LOOPBACK, uris: [peerUri(name)] }, keyType));
  }
  // Hostile fixtures: each must be refused by a transport that trusts only `ca`.
  if (need('rogue-ca') || need('rogue-peer')) {
    const rogueCa = await makeCa(uniqueCaName('rogue CA'), keyType);
    writePem(dir, 'rogue-ca', rogueCa);
    writePem(dir, 'rogue-peer', await makePeer(rogueCa, { cn: 'peer-1', ...LOOPBACK }, keyType));
  }
  if (caFresh || need('expired-peer', true)) {
    writePem(dir, 'expired-peer', await makePeer(ca, {
      cn: 'expired-peer', ...LOOPBACK, notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY)
    }, keyType));
  }
  if (caFresh || need('wrong-name-peer')) {
    writePem(dir, 'wrong-name-peer', await makePeer(ca, { cn: 'wrong-name-peer', dns: ['elsewhere.invalid'], ips: ['192.0.2.1'] }, keyType));
  }
  // The CA a rotation moves to, with peers signed only by it.
  const nextFresh = need('next-ca');
  const nextCa = nextFresh ? await makeCa(uniqueCaName('gossipmonger next CA'), keyType) : readOwnPem(dir, 'next-ca')!;
  if (nextFresh) writePem(dir, 'next-ca', nextCa);
  for (const name of ['next-peer-1', 'next-peer-2']) {
    if (nextFresh || need(name)) writePem(dir, name, await makePeer(nextCa, { cn: name, ...LOOPBACK, uris: [peerUri(name)] }, keyType));
  }
  return { dir, generated: true, ca: describeCa(ca.cert, caFresh) };
}

/** Splits hosts into SAN entries: IP addresses as IP SANs, the rest as DNS names. */
function sansOf (hosts: string[]): { dns: string[]; ips: string[] } {
  const unique = [...new Set(hosts)];
  return { dns: unique.filter((h) => isIP(h) === 0), ips: unique.filter((h) => isIP(h) !== 0) };
}

/**
 * The CA already in `dir`, read only from this user's own files (see
 * readOwnFile); refused when its key does not match it, it is not a CA, or
 * it expires within a day.
 */
function folderCa (dir: string): Pem | undefined {
  const pem = readOwnPem(dir, 'ca');
  if (pem === undefined) return undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem.cert);
    if (!cert.checkPrivateKey(createPrivateKey(pem.key))) throw new RefusedError(`${join(dir, 'ca.key')} does not belong to ${join(dir, 'ca.crt')}`);
  } catch (error) {
    if (error instanceof RefusedError) throw error;
    throw new RefusedError(`${join(dir, 'ca.crt')} and ca.key cannot be read as a certificate and its key`);
  }
  if (!cert.ca) throw new RefusedError(`${join(dir, 'ca.crt')} is not a CA certificate`);
  if (Date.parse(cert.validTo) < Date.now() + DAY) throw new RefusedError(`the CA in ${dir} expires ${cert.validTo}: make the next one in a new folder (see --help, "Rotating the CA")`);
  return pem;
}

/** True when a CA file (or something in its place) is in `dir`. */
function hasCaFiles (dir: string): boolean {
  return ['ca.crt', 'ca.key'].some((name) => {
    try {
      lstatSync(join(dir, name));
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * A user's cluster: a new CA (or, with `reuseCa`, the folder's own) and one
 * certificate per named peer, written when missing, about to expire, not
 * issued by that CA, or with `force`.
 */
async function generateNamed (options: CertOptions, named: NamedPeer[]): Promise<CertResult & { written: string[] }> {
  const dir = options.dir ?? resolve('certs');
  const keyType = options.keyType ?? 'ec';
  const days = options.days ?? 365;
  const force = options.force === true;
  prepareDir(dir);
  let ca: Pem | undefined;
  if (!force && hasCaFiles(dir)) {
    if (options.reuseCa !== true) {
      let which = '';
      try {
        const existing = readOwnFile(dir, 'ca.crt', false);
        if (existing !== undefined) {
          const info = describeCa(existing, false);
          which = ` (${info.subject}, SHA-256 ${info.fingerprint256})`;
        }
      } catch (error) {
        which = ` (${(error as Error).message})`;
      }
      throw new RefusedError(`${dir} already holds a CA${which}. --reuse-ca issues from it; for the next CA of a rotation, use a new folder (--out); --force replaces it`);
    }
    ca = folderCa(dir);
    if (ca === undefined) throw new RefusedError(`${dir} holds only half a CA (ca.crt or ca.key is missing); --force replaces it`);
  }
  const caFresh = ca === undefined;
  ca ??= await makeCa(uniqueCaName('gossipmonger cluster CA'), keyType, days);
  // A revoked certificate is never kept, however valid it still looks.
  const revoked = new Set(caFresh ? [] : readRevocations(dir).revoked.map((entry) => entry.serial));
  const written: string[] = [];
  if (caFresh) {
    writePem(dir, 'ca', ca);
    written.push('ca');
    // A CRL and revocation list left by a CA this run replaced belong to that CA.
    for (const name of ['crl.json', 'ca.crl']) {
      const path = join(dir, name);
      const planted = plantedReason(path);
      if (planted !== undefined) throw new RefusedError(`${planted}: not removing it`);
      rmSync(path, { force: true });
    }
  }
  for (const peer of named) {
    if (!caFresh && !force) {
      let current: Pem | undefined;
      try {
        current = readOwnPem(dir, peer.name);
      } catch {
        current = undefined;
      }
      if (usable(current, false, ca) && !revoked.has(new X509Certificate(current!.cert).serialNumber)) continue;
    }
    const sans = sansOf([...peer.hosts, ...(options.hosts ?? [])]);
    writePem(dir, peer.name, await makePeer(ca, { cn: peer.name, ...sans, notAfter: new Date(Date.now() + days * DAY) }, keyType));
    written.push(peer.name);
  }
  return { dir, generated: written.length > 0, written, ca: describeCa(ca.cert, caFresh) };
}

/** The list of revoked certificates a folder keeps beside its CA (crl.json). */
interface RevocationList {
  /** The last CRL number issued. */
  number: number;
  revoked: Array<{ serial: string; date: string; name: string }>;
}

/** The folder's revocation list (crl.json), empty when there is none. */
function readRevocations (dir: string): RevocationList {
  const text = readOwnFile(dir, 'crl.json', false);
  return text === undefined ? { number: 0, revoked: [] } : JSON.parse(text) as RevocationList;
}

export interface RevokeResult {
  dir: string;
  /** The CRL file written. */
  crl: string;
  ca: CaInfo;
  /** Names revoked by this run (already revoked ones are not repeated). */
  revoked: string[];
  /** Every entry of the CRL. */
  total: number;
  number: number;
  nextUpdate: Date;
}

/**
 * Revokes the named peers of `dir` (their NAME.crt must have been issued by
 * the folder's CA) and writes the folder's CRL, `ca.crl`, signed by that CA:
 * every certificate revoked so far, a CRL number one higher than the last,
 * and a nextUpdate `crlDays` away. With no names, the CRL is written again.
 */
export function revokeCerts (options: CertOptions): RevokeResult {
  const dir = options.dir ?? resolve('certs');
  const crlDays = options.crlDays ?? 30;
  prepareDir(dir);
  const ca = readOwnPem(dir, 'ca');
  if (ca === undefined) throw new RefusedError(`${dir} holds no CA (ca.crt and ca.key): nothing can sign a CRL there`);
  const caCert = new X509Certificate(ca.cert);
  const list = readRevocations(dir);
  const now = new Date();
  const revoked: string[] = [];
  for (const name of options.revoke ?? []) {
    const text = readOwnFile(dir, `${name}.crt`, false);
    if (text === undefined) throw new RefusedError(`${join(dir, `${name}.crt`)} does not exist`);
    const cert = new X509Certificate(text);
    if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) throw new RefusedError(`${join(dir, `${name}.crt`)} was not issued by the CA of ${dir}: its CRL cannot revoke it`);
    if (list.revoked.some((entry) => entry.serial === cert.serialNumber)) continue;
    list.revoked.push({ serial: cert.serialNumber, date: now.toISOString(), name });
    revoked.push(name);
  }
  list.number++;
  const nextUpdate = new Date(now.getTime() + crlDays * DAY);
  const entries: RevokedEntry[] = list.revoked.map((entry) => ({ serial: entry.serial, date: new Date(entry.date) }));
  // thisUpdate back-dated a minute, as certificates are: a CRL "from the future" is refused.
  const crl = issueCrl({ issuer: ca, revoked: entries, number: list.number, thisUpdate: backdated(), nextUpdate });
  writeFileSafely(dir, 'crl.json', JSON.stringify(list, null, 2) + '\n', 0o644);
  writeFileSafely(dir, 'ca.crl', crl, 0o644);
  return { dir, crl: join(dir, 'ca.crl'), ca: describeCa(ca.cert, false), revoked, total: list.revoked.length, number: list.number, nextUpdate };
}

/** Reads a key and certificate written by generateCerts. */
export function loadPem (name: string, dir: string = DEFAULT_CERT_DIR): Pem {
  return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') };
}

const HELP = `Usage: gossipmonger-tls-certs [options]      (in this repository: npm run certs -- [options])

Writes a certificate authority and peer certificates for a development or
staging cluster, with Node alone. Every peer certificate serves both ends of a
connection (extended key usage serverAuth + clientAuth), names its peer in the
subject CN (the gossipmonger id that tls.authorize 'sender-id' checks), and
lists in its subjectAltName the hosts the peer is reached on: the exact host
each node advertises must be there. Keys are created with mode 0600. Every CA
gets a name of its own and key identifiers, so CAs can be rotated.

For production, use your own CA (see the README, "Certificates for production").

Options:
  --peer NAME[=HOST,...]  a peer named NAME, reached on the given DNS names or IP
                          addresses (repeat the flag for each peer); writes
                          NAME.crt and NAME.key
  --host HOST             a DNS name or IP address added to every --peer's
                          certificate (repeatable); for a cluster on one machine:
                          --host localhost --host 127.0.0.1
  --out DIR               output folder (default: ./certs)
  --reuse-ca              issue from the CA already in DIR (ca.crt, ca.key), to
                          add or renew peers; without it a folder holding a CA
                          is refused. Its files must be yours, the key mode 0600
  --days N                validity in days (default: 365)
  --rsa                   RSA 2048 keys instead of ECDSA P-256
  --force                 regenerate everything, CA included (the old CA is gone:
                          for a rotation, write the next CA to a new folder)
  --revoke NAME           revoke DIR/NAME.crt (repeatable) and write DIR/ca.crl,
                          signed by DIR's CA, listing every peer revoked so far
                          (kept in DIR/crl.json)
  --crl                   write DIR/ca.crl again (a fresh next update), revoking
                          nothing new; also makes the first, empty, CRL
  --crl-days N            days until the CRL's next update (default: 30): issue
                          a new one before then, OpenSSL refuses an expired CRL
  --help                  this text

The command prints which CA it used (subject and SHA-256 fingerprint).

Rotating the CA: write the next CA and certificates to a new folder, beside
the current one, then trust both (cat old/ca.crt new/ca.crt > trust.crt), move
every node to its new certificate, and trust the new CA alone (README,
"Rotating the CA").

Without --peer, writes this repository's test and demo set instead:
  ca, peer-1..peer-N (CN peer-N, SAN localhost, 127.0.0.1, ::1 and URI
  ${peerUri('peer-N')}), rogue-ca, rogue-peer, expired-peer,
  wrong-name-peer, next-ca, next-peer-1, next-peer-2
  --peers N               number of peer-N certificates (default: 5)
  --if-missing            accepted for scripts; writing only what is missing or
                          about to expire is the default

Example (three nodes, each on its own host, plus loopback for local tests):
  gossipmonger-tls-certs --out certs --peer node-a=node-a.internal,10.0.0.5 \\
    --peer node-b=node-b.internal --peer node-c=node-c.internal --host localhost
`;

/** A peer name is a file name and a CN: letters, digits, '.', '_' and '-'. */
const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function peerName (flag: string, value: string, name: string): string {
  if (!PEER_NAME.test(name) || name === 'ca') throw new Error(`${flag} ${value}: the name must be letters, digits, '.', '_' or '-' (and not 'ca')`);
  return name;
}

function parsePeer (value: string | undefined): NamedPeer {
  if (!value) throw new Error('--peer needs NAME or NAME=HOST,...');
  const [name, hostList] = value.split('=', 2) as [string, string | undefined];
  peerName('--peer', value, name);
  const hosts = hostList === undefined ? [] : hostList.split(',').map((h) => h.trim()).filter((h) => h.length > 0);
  for (const host of hosts) checkHost('--peer', host);
  return { name, hosts };
}

function checkHost (flag: string, host: string | undefined): string {
  if (!host || !(isIP(host) !== 0 || /^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host))) throw new Error(`${flag}: ${JSON.stringify(host ?? '')} is not a DNS name or an IP address`);
  return host;
}

function wholeNumber (flag: string, value: string | undefined, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${flag} needs a whole number from 1 to ${max}`);
  return n;
}

export function parseArgs (argv: string[]): CertOptions & { help?: boolean } {
  const options: CertOptions & { help?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--help': case '-h': options.help = true; break;
      case '--rsa': options.keyType = 'rsa'; break;
      case '--force': options.force = true; break;
      case '--reuse-ca': options.reuseCa = true; break;
      case '--if-missing': break;
      case '--out': {
        const value = argv[++i];
        if (!value) throw new Error('--out needs a directory');
        options.dir = resolve(value);
        break;
      }
      case '--peers': options.peers = wholeNumber('--peers', argv[++i], 1000); break;
      case '--days': options.days = wholeNumber('--days', argv[++i], 3650); break;
      case '--crl-days': options.crlDays = wholeNumber('--crl-days', argv[++i], 3650); break;
      case '--crl': options.crl = true; break;
      case '--revoke': {
        const value = argv[++i];
        if (!value) throw new Error('--revoke needs the NAME of a peer in the folder');
        options.revoke = [...(options.revoke ?? []), peerName('--revoke', value, value)];
        break;
      }
      case '--peer': {
        const peer = parsePeer(argv[++i]);
        options.named = [...(options.named ?? []).filter((p) => p.name !== peer.name), peer];
        break;
      }
      case '--host': options.hosts = [...(options.hosts ?? []), checkHost('--host', argv[++i])]; break;
      default: throw new Error(`unknown argument ${arg}; see --help`);
    }
  }
  const revoking = options.revoke !== undefined || options.crl === true;
  if (revoking && (options.named !== undefined || options.peers !== undefined || options.force === true || options.reuseCa === true || options.hosts !== undefined || options.days !== undefined || options.keyType !== undefined)) {
    throw new Error('--revoke and --crl only write the folder\'s CRL: run them on their own (with --out and --crl-days); see --help');
  }
  if (options.crlDays !== undefined && !revoking) throw new Error('--crl-days goes with --revoke or --crl; see --help');
  if (options.named === undefined && (options.hosts !== undefined || options.days !== undefined || options.reuseCa === true)) throw new Error('--host, --days and --reuse-ca go with --peer; see --help');
  if (options.named !== undefined && options.peers !== undefined) throw new Error('--peers (the test set) and --peer (named peers) do not mix; see --help');
  return options;
}

function describeCaLine (ca: CaInfo, dir: string): string {
  return `certs: ${ca.created ? 'new' : 'existing'} CA in ${dir}: ${ca.subject}, SHA-256 ${ca.fingerprint256}\n`;
}

async function main (): Promise<void> {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  if (options.help) {
    process.stdout.write(HELP);
    return;
  }
  const started = Date.now();
  if (options.revoke !== undefined || options.crl === true) {
    const result = revokeCerts(options);
    process.stdout.write(describeCaLine(result.ca, result.dir));
    process.stdout.write(`certs: ${result.revoked.length === 0 ? 'revoked nothing new' : `revoked ${result.revoked.join(', ')}`}; wrote ${result.crl} (CRL number ${result.number}, ${result.total} revoked, next update ${result.nextUpdate.toISOString()})\n`);
    return;
  }
  if (options.named === undefined) options.dir ??= resolve('certs');
  const { dir, generated, written, ca } = await generateCerts(options);
  if (ca !== undefined) process.stdout.write(describeCaLine(ca, dir));
  const what = written === undefined ? `${certNames(options.peers ?? 5).length} certificates and keys` : written.join(', ');
  process.stdout.write(generated
    ? `certs: wrote ${what} (${options.keyType ?? 'ec'}) to ${dir} in ${Date.now() - started} ms\n`
    : `certs: ${dir} is complete and valid; nothing to do (--force regenerates)\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`certs: ${(error as Error).message}\n`);
    process.exitCode = error instanceof RefusedError ? 2 : 1;
  });
}
