/**
 * Writes the test and demo certificates into certs/ with selfsigned.
 * Nothing it writes is ever committed (see .gitignore); run `npm run certs`.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import { generate } from 'selfsigned';

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
}

export interface Pem {
  key: string;
  cert: string;
}

interface Subject {
  cn: string;
  dns?: string[];
  ips?: string[];
  uris?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

const DAY = 24 * 60 * 60 * 1000;
export const DEFAULT_CERT_DIR = resolve(__dirname, '..', '..', 'certs');

function keyOptions (keyType: KeyType): { keyType: KeyType; keySize?: number; curve?: 'P-256' } {
  return keyType === 'rsa' ? { keyType, keySize: 2048 } : { keyType, curve: 'P-256' };
}

/** A self-signed CA that may sign certificates and nothing else. */
export async function makeCa (cn: string, keyType: KeyType = 'ec'): Promise<Pem> {
  const pems = await generate([{ name: 'commonName', value: cn }], {
    ...keyOptions(keyType),
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 365 * DAY),
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
  const pems = await generate([{ name: 'commonName', value: subject.cn }], {
    ...keyOptions(keyType),
    algorithm: 'sha256',
    notBeforeDate: subject.notBefore ?? new Date(Date.now() - 60 * 1000),
    notAfterDate: subject.notAfter ?? new Date(Date.now() + 365 * DAY),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
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
export async function generateCerts (options: CertOptions = {}): Promise<{ dir: string; generated: boolean }> {
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

/** Reads a key and certificate written by generateCerts. */
export function loadPem (name: string, dir: string = DEFAULT_CERT_DIR): Pem {
  return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') };
}

const HELP = `Usage: npm run certs -- [options]

Writes a test CA, peer certificates and hostile fixtures into certs/ with
selfsigned. Private keys are written with mode 0600; nothing here is committed.

Files (each NAME.crt and NAME.key):
  ca                  the CA every test and demo peer trusts
  peer-1..peer-N      CN peer-N, SAN localhost, 127.0.0.1, ::1 and
                      URI ${peerUri('peer-N')}; serverAuth + clientAuth
  rogue-ca, rogue-peer   an untrusted CA and a peer it signed
  expired-peer        signed by ca, expired yesterday
  wrong-name-peer     signed by ca, names neither localhost nor 127.0.0.1
  next-ca, next-peer-1, next-peer-2   a second CA for rotation tests

Options:
  --out DIR       output directory (default: certs/)
  --peers N       number of peer certificates (default: 5)
  --rsa           RSA 2048 keys instead of ECDSA P-256
  --force         regenerate everything, CA included
  --if-missing    accepted for scripts; writing only what is missing or about
                  to expire is the default (a valid CA is kept)
  --help          this text
`;

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
      case '--peers': {
        const value = Number(argv[++i]);
        if (!Number.isInteger(value) || value < 1 || value > 1000) throw new Error('--peers needs a whole number from 1 to 1000');
        options.peers = value;
        break;
      }
      default: throw new Error(`unknown argument ${arg}; see --help`);
    }
  }
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
  const { dir, generated } = await generateCerts(options);
  process.stdout.write(generated
    ? `certs: wrote ${certNames(options.peers ?? 5).length} certificates and keys (${options.keyType ?? 'ec'}) to ${dir} in ${Date.now() - started} ms\n`
    : `certs: ${dir} is complete and valid; nothing to do (--force regenerates)\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`certs: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
