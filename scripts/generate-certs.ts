#!/usr/bin/env node
/**
 * Certificates for a development or staging cluster, with selfsigned.
 *
 * Shipped as the `gossipmonger-tls-certs` command: `--peer NAME[=HOST,...]`
 * writes a CA and one certificate per named peer (CN = the gossipmonger id,
 * SAN = the hosts it is reached on, serverAuth + clientAuth). Without
 * `--peer` it writes this repository's test and demo set (peer-1..N and
 * hostile fixtures) into certs/, which is never committed.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';

type Generate = typeof import('selfsigned').generate;

/**
 * selfsigned is an optional peer dependency of the package: only this command
 * needs it, so it is loaded on first use with a message saying how to get it.
 */
async function selfsigned (): Promise<Generate> {
  try {
    return (await import('selfsigned')).generate;
  } catch (error) {
    throw Object.assign(new Error('gossipmonger-tls-certs needs the selfsigned package: npm install --save-dev selfsigned'), { cause: error });
  }
}

export type KeyType = 'ec' | 'rsa';

export interface CertOptions {
  /** Output directory. @default certs/ next to package.json */
  dir?: string;
  /** Peer certificates signed by the CA. @default 5 */
  peers?: number;
  /** @default 'ec' (ECDSA P-256) */
  keyType?: KeyType;
  /** Regenerate even when every file is present and valid. @default false */
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

const DAY = 24 * 60 * 60 * 1000;
export const DEFAULT_CERT_DIR = resolve(__dirname, '..', '..', 'certs');

function keyOptions (keyType: KeyType): { keyType: KeyType; keySize?: number; curve?: 'P-256' } {
  return keyType === 'rsa' ? { keyType, keySize: 2048 } : { keyType, curve: 'P-256' };
}

/**
 * A CA that may sign certificates and nothing else: self-signed, or an
 * intermediate signed by `issuer`.
 */
export async function makeCa (cn: string, keyType: KeyType = 'ec', days = 365, issuer?: Pem): Promise<Pem> {
  const generate = await selfsigned();
  const pems = await generate([{ name: 'commonName', value: cn }], {
    ...keyOptions(keyType),
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + days * DAY),
    ...(issuer === undefined ? {} : { ca: issuer }),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
    ]
  });
  return { key: pems.private, cert: pems.cert };
}

/** A peer certificate for both ends of a connection (serverAuth + clientAuth), signed by `ca`. */
export async function makePeer (ca: Pem, subject: Subject, keyType: KeyType = 'ec'): Promise<Pem> {
  const altNames = [
    ...(subject.dns ?? []).map((value) => ({ type: 2 as const, value })),
    ...(subject.ips ?? []).map((ip) => ({ type: 7 as const, ip })),
    ...(subject.uris ?? []).map((value) => ({ type: 6 as const, value }))
  ];
  const generate = await selfsigned();
  const pems = await generate([{ name: 'commonName', value: subject.cn }], {
    ...keyOptions(keyType),
    algorithm: 'sha256',
    notBeforeDate: subject.notBefore ?? new Date(Date.now() - 60 * 1000),
    notAfterDate: subject.notAfter ?? new Date(Date.now() + 365 * DAY),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', ...Object.fromEntries((subject.purposes ?? ['serverAuth', 'clientAuth']).map((p) => [p, true])) },
      { name: 'subjectAltName', altNames }
    ]
  });
  return { key: pems.private, cert: pems.cert };
}

/** SANs of every loopback peer: the names a test or the demo connects to. */
export const LOOPBACK = { dns: ['localhost'], ips: ['127.0.0.1', '::1'] };

/** The identity URI a peer certificate carries besides its CN. */
export function peerUri (name: string): string {
  return `spiffe://gossipmonger.test/${name}`;
}

function writePem (dir: string, name: string, pem: Pem): void {
  writeFileSync(join(dir, `${name}.crt`), pem.cert);
  // Private keys readable by the owner only.
  writeFileSync(join(dir, `${name}.key`), pem.key, { mode: 0o600 });
  chmodSync(join(dir, `${name}.key`), 0o600);
}

/** Names of the files a complete set has (without extension). */
export function certNames (peers: number): string[] {
  const names = ['ca', 'rogue-ca', 'rogue-peer', 'expired-peer', 'wrong-name-peer', 'next-ca', 'next-peer-1', 'next-peer-2'];
  for (let i = 1; i <= peers; i++) names.push(`peer-${i}`);
  return names;
}

/** True when NAME.crt and NAME.key exist and the certificate is valid for at least another day. */
function isValid (dir: string, name: string, mayBeExpired = false): boolean {
  const crt = join(dir, `${name}.crt`);
  if (!existsSync(crt) || !existsSync(join(dir, `${name}.key`))) return false;
  if (mayBeExpired) return true;
  return Date.parse(new X509Certificate(readFileSync(crt)).validTo) >= Date.now() + DAY;
}

/** True when every file is there and no certificate expires within a day (except the expired fixture). */
export function isComplete (dir: string, peers: number): boolean {
  return certNames(peers).every((name) => isValid(dir, name, name === 'expired-peer'));
}

/**
 * Writes whatever is missing or about to expire; returns the directory and
 * whether anything was written. A valid CA is kept, so adding peers (the demo's
 * --peers) never invalidates certificates that tests or peers already hold.
 */
export async function generateCerts (options: CertOptions = {}): Promise<{ dir: string; generated: boolean; written?: string[] }> {
  if (options.named !== undefined) return generateNamed(options, options.named);
  const dir = options.dir ?? DEFAULT_CERT_DIR;
  const peers = options.peers ?? 5;
  const keyType = options.keyType ?? 'ec';
  const force = options.force === true;
  if (!force && isComplete(dir, peers)) return { dir, generated: false };
  mkdirSync(dir, { recursive: true });
  const need = (name: string, mayBeExpired = false): boolean => force || !isValid(dir, name, mayBeExpired);

  const caFresh = need('ca');
  const ca = caFresh ? await makeCa('gossipmonger test CA', keyType) : loadPem('ca', dir);
  if (caFresh) writePem(dir, 'ca', ca);
  for (let i = 1; i <= peers; i++) {
    const name = `peer-${i}`;
    if (caFresh || need(name)) writePem(dir, name, await makePeer(ca, { cn: name, ...LOOPBACK, uris: [peerUri(name)] }, keyType));
  }
  // Hostile fixtures: each must be refused by a transport that trusts only `ca`.
  if (need('rogue-ca') || need('rogue-peer')) {
    const rogueCa = await makeCa('rogue CA', keyType);
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
  const nextCa = nextFresh ? await makeCa('gossipmonger next CA', keyType) : loadPem('next-ca', dir);
  if (nextFresh) writePem(dir, 'next-ca', nextCa);
  for (const name of ['next-peer-1', 'next-peer-2']) {
    if (nextFresh || need(name)) writePem(dir, name, await makePeer(nextCa, { cn: name, ...LOOPBACK, uris: [peerUri(name)] }, keyType));
  }
  return { dir, generated: true };
}

/** Splits hosts into SAN entries: IP addresses as IP SANs, the rest as DNS names. */
function sansOf (hosts: string[]): { dns: string[]; ips: string[] } {
  const unique = [...new Set(hosts)];
  return { dns: unique.filter((h) => isIP(h) === 0), ips: unique.filter((h) => isIP(h) !== 0) };
}

/**
 * A user's cluster: the CA (kept when it is there and valid) and one
 * certificate per named peer, written when missing, about to expire, or with
 * `force`.
 */
async function generateNamed (options: CertOptions, named: NamedPeer[]): Promise<{ dir: string; generated: boolean; written: string[] }> {
  const dir = options.dir ?? resolve('certs');
  const keyType = options.keyType ?? 'ec';
  const days = options.days ?? 365;
  const force = options.force === true;
  mkdirSync(dir, { recursive: true });
  const caFresh = force || !isValid(dir, 'ca');
  const ca = caFresh ? await makeCa('gossipmonger cluster CA', keyType, days) : loadPem('ca', dir);
  const written: string[] = [];
  if (caFresh) {
    writePem(dir, 'ca', ca);
    written.push('ca');
  }
  for (const peer of named) {
    if (!caFresh && !force && isValid(dir, peer.name)) continue;
    const sans = sansOf([...peer.hosts, ...(options.hosts ?? [])]);
    writePem(dir, peer.name, await makePeer(ca, { cn: peer.name, ...sans, notAfter: new Date(Date.now() + days * DAY) }, keyType));
    written.push(peer.name);
  }
  return { dir, generated: written.length > 0, written };
}

/** Reads a key and certificate written by generateCerts. */
export function loadPem (name: string, dir: string = DEFAULT_CERT_DIR): Pem {
  return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') };
}

const HELP = `Usage: gossipmonger-tls-certs [options]      (in this repository: npm run certs -- [options])

Writes a certificate authority and peer certificates for a development or
staging cluster. Every peer certificate serves both ends of a connection
(extended key usage serverAuth + clientAuth), names its peer in the subject
CN (the gossipmonger id that tls.authorize 'sender-id' checks), and lists in
its subjectAltName the hosts the peer is reached on: the exact host each node
advertises must be there. Keys are written with mode 0600. A valid ca.crt and
ca.key already in the folder are kept, so peers can be added later.

For production, use your own CA (see the README, "Certificates for production").

Options:
  --peer NAME[=HOST,...]  a peer named NAME, reached on the given DNS names or IP
                          addresses (repeat the flag for each peer); writes
                          NAME.crt and NAME.key
  --host HOST             a DNS name or IP address added to every --peer's
                          certificate (repeatable); for a cluster on one machine:
                          --host localhost --host 127.0.0.1
  --out DIR               output folder (default: ./certs)
  --days N                validity in days (default: 365)
  --rsa                   RSA 2048 keys instead of ECDSA P-256
  --force                 regenerate everything, CA included
  --help                  this text

Without --peer, writes this repository's test and demo set instead:
  ca, peer-1..peer-N (CN peer-N, SAN localhost, 127.0.0.1, ::1 and URI
  ${peerUri('peer-N')}), rogue-ca, rogue-peer, expired-peer,
  wrong-name-peer, next-ca, next-peer-1, next-peer-2
  --peers N               number of peer-N certificates (default: 5)
  --if-missing            accepted for scripts; writing only what is missing or
                          about to expire is the default

Example (three nodes, each on its own host, plus loopback for local tests):
  gossipmonger-tls-certs --out certs --peer node-a=node-a.internal,10.0.0.5 \
    --peer node-b=node-b.internal --peer node-c=node-c.internal --host localhost
`;

/** A peer name is a file name and a CN: letters, digits, '.', '_' and '-'. */
const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function parsePeer (value: string | undefined): NamedPeer {
  if (!value) throw new Error('--peer needs NAME or NAME=HOST,...');
  const [name, hostList] = value.split('=', 2) as [string, string | undefined];
  if (!PEER_NAME.test(name) || name === 'ca') throw new Error(`--peer ${value}: the name must be letters, digits, '.', '_' or '-' (and not 'ca')`);
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
      case '--if-missing': break;
      case '--out': {
        const value = argv[++i];
        if (!value) throw new Error('--out needs a directory');
        options.dir = resolve(value);
        break;
      }
      case '--peers': options.peers = wholeNumber('--peers', argv[++i], 1000); break;
      case '--days': options.days = wholeNumber('--days', argv[++i], 3650); break;
      case '--peer': {
        const peer = parsePeer(argv[++i]);
        options.named = [...(options.named ?? []).filter((p) => p.name !== peer.name), peer];
        break;
      }
      case '--host': options.hosts = [...(options.hosts ?? []), checkHost('--host', argv[++i])]; break;
      default: throw new Error(`unknown argument ${arg}; see --help`);
    }
  }
  if (options.named === undefined && (options.hosts !== undefined || options.days !== undefined)) throw new Error('--host and --days go with --peer; see --help');
  if (options.named !== undefined && options.peers !== undefined) throw new Error('--peers (the test set) and --peer (named peers) do not mix; see --help');
  return options;
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
  if (options.named === undefined) options.dir ??= resolve('certs');
  const { dir, generated, written } = await generateCerts(options);
  const what = written === undefined ? `${certNames(options.peers ?? 5).length} certificates and keys` : written.join(', ');
  process.stdout.write(generated
    ? `certs: wrote ${what} (${options.keyType ?? 'ec'}) to ${dir} in ${Date.now() - started} ms\n`
    : `certs: ${dir} is complete and valid; nothing to do (--force regenerates)\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`certs: ${(error as Error).message}\n`);
    process.exitCode = 1;
  });
}
