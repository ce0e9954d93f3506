/**
 * A corpus of trust situations for the differential test of src/tls/trust.ts
 * (test/integration/trust-differential.test.ts), made by the openssl command
 * line: `openssl ca` sets any validity window, extension and CRL field, so the
 * material is produced by the same library that later judges it at a
 * handshake, and never by the code under test.
 *
 * One small PKI, keys reused where a certificate is a renewal (same subject,
 * same key): a root and a second root, an intermediate with a renewal, an
 * expired and a not-yet-valid copy, a cross-signed copy, a short-lived
 * intermediate, same-name CAs with and without key identifiers, and CRLs of
 * every kind the issue lists. About 60 openssl runs, under a second.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DAY = 86400_000;

/** openssl's YYYYMMDDHHMMSSZ for now + `days`. */
function stamp (days: number, now: number): string {
  return new Date(now + days * DAY).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

export interface Cert {
  name: string;
  pem: string;
  der: Buffer;
  file: string;
  keyFile: string;
  key: string;
  serial: string;
  subject: string;
}

export interface CertOptions {
  /** Validity window in days from now. */
  from: number;
  to: number;
  ca?: boolean;
  /** Subject key identifier (CAs) and authority key identifier (issued ones); default true. */
  keyIds?: boolean;
  /** Name of the key to use (a renewal reuses its predecessor's); default the certificate's name. */
  key?: string;
}

export interface CrlOptions {
  revoked?: Cert[];
  /** lastUpdate and nextUpdate in days from now; default -1 and +30. */
  from?: number;
  to?: number;
  /** Lines of the CRL's extension section (openssl config syntax). */
  extensions?: string[];
}

/** Builds certificates and CRLs in a temporary folder; dispose() removes it. */
export class Pki {
  readonly dir = mkdtempSync(join(tmpdir(), 'gm-trust-corpus-'));
  readonly now = Date.now();
  private crlCount = 0;
  private readonly certs = new Map<string, Cert>();

  constructor () {
    writeFileSync(join(this.dir, 'serial'), '1000\n');
  }

  private path (file: string): string {
    return join(this.dir, file);
  }

  private run (args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  private keyFile (name: string): string {
    const file = this.path(`${name}.key`);
    try {
      readFileSync(file);
    } catch {
      this.run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file]);
    }
    return file;
  }

  /** A `openssl ca` configuration over database `db` (its own index file, so CRLs list exactly what they are told). */
  private config (db: string, extensions: string[] = []): string {
    const file = this.path(`${db}.cnf`);
    writeFileSync(this.path(`${db}.index`), '');
    writeFileSync(this.path(`${db}.crlnumber`), '01\n');
    writeFileSync(file, [
      '[ ca ]', 'default_ca = d', '[ d ]',
      `database = ${this.path(`${db}.index`)}`, `new_certs_dir = ${this.dir}`, `serial = ${this.path('serial')}`,
      `crlnumber = ${this.path(`${db}.crlnumber`)}`, 'default_md = sha256', 'policy = p', 'unique_subject = no',
      'email_in_dn = no', 'copy_extensions = none', '[ p ]', 'commonName = supplied',
      '[ crlext ]', ...extensions, ''
    ].join('\n'));
    return file;
  }

  /** A certificate `name` for CN=`cn`, issued by `issuer` (self-signed without one). */
  cert (name: string, cn: string, issuer: Cert | undefined, options: CertOptions): Cert {
    const keyFile = this.keyFile(options.key ?? name);
    const keyIds = options.keyIds !== false;
    const ext = this.path(`${name}.ext`);
    writeFileSync(ext, [
      options.ca ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=CA:FALSE',
      options.ca ? 'keyUsage=critical,keyCertSign,cRLSign' : 'keyUsage=critical,digitalSignature',
      ...(options.ca ? [] : ['extendedKeyUsage=serverAuth,clientAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost']),
      // openssl 3 adds both identifiers unless told 'none'.
      keyIds ? 'subjectKeyIdentifier=hash' : 'subjectKeyIdentifier=none',
      keyIds && issuer !== undefined ? 'authorityKeyIdentifier=keyid' : 'authorityKeyIdentifier=none'
    ].join('\n') + '\n');
    this.run(['req', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-out', this.path(`${name}.csr`)]);
    const signer = issuer === undefined ? ['-selfsign', '-keyfile', keyFile] : ['-cert', issuer.file, '-keyfile', issuer.keyFile];
    this.run(['ca', '-batch', '-notext', '-config', this.config(`db-${name}`), ...signer, '-in', this.path(`${name}.csr`),
      '-out', this.path(`${name}.crt`), '-startdate', stamp(options.from, this.now), '-enddate', stamp(options.to, this.now), '-extfile', ext]);
    const pem = readFileSync(this.path(`${name}.crt`), 'utf8');
    const x509 = new X509Certificate(pem);
    const cert: Cert = { name, pem, der: x509.raw, file: this.path(`${name}.crt`), keyFile, key: readFileSync(keyFile, 'utf8'), serial: x509.serialNumber, subject: cn };
    this.certs.set(name, cert);
    return cert;
  }

  /** A PEM CRL signed by `issuer`. */
  crl (issuer: Cert, options: CrlOptions = {}): string {
    const db = `crl-${++this.crlCount}`;
    const config = this.config(db, options.extensions);
    const lines = (options.revoked ?? []).map((cert) =>
      ['R', stamp(3650, this.now).slice(2), stamp(-2, this.now).slice(2), cert.serial, 'unknown', `/CN=${cert.subject}`].join('\t'));
    writeFileSync(this.path(`${db}.index`), lines.length === 0 ? '' : lines.join('\n') + '\n');
    const out = this.path(`${db}.pem`);
    this.run(['ca', '-gencrl', '-batch', '-config', config, '-cert', issuer.file, '-keyfile', issuer.keyFile, '-out', out,
      '-crl_lastupdate', stamp(options.from ?? -1, this.now), '-crl_nextupdate', stamp(options.to ?? 30, this.now),
      ...(options.extensions === undefined ? [] : ['-crlexts', 'crlext'])]);
    return readFileSync(out, 'utf8');
  }

  /** The DER form of a PEM CRL. */
  crlDer (pem: string): Buffer {
    const file = this.path(`der-${++this.crlCount}.pem`);
    writeFileSync(file, pem);
    return execFileSync('openssl', ['crl', '-in', file, '-outform', 'DER']);
  }

  /** Writes `text` to a file in the corpus folder (for the openssl command line). */
  file (name: string, text: string): string {
    const file = this.path(name);
    writeFileSync(file, text);
    return file;
  }

  dispose (): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The corpus: every certificate and CRL the cases use. */
export function buildCorpus (): { pki: Pki; c: Record<string, Cert>; crl: Record<string, string> } {
  const pki = new Pki();
  const c: Record<string, Cert> = {};
  const ca = { ca: true };
  // Roots: the current one, an expired and a not-yet-valid copy (same name and key), a second root.
  c.root = pki.cert('root', 'Diff Root', undefined, { ...ca, from: -30, to: 3650 });
  c.rootExpired = pki.cert('root-expired', 'Diff Root', undefined, { ...ca, from: -400, to: -1, key: 'root' });
  c.rootFuture = pki.cert('root-future', 'Diff Root', undefined, { ...ca, from: 2, to: 3650, key: 'root' });
  c.root2 = pki.cert('root2', 'Diff Root 2', undefined, { ...ca, from: -30, to: 3650 });
  // The intermediate, its renewal, expired and not-yet-valid copies, and a copy cross-signed by root2.
  c.inter = pki.cert('inter', 'Diff Intermediate', c.root, { ...ca, from: -20, to: 2000 });
  c.interRenewed = pki.cert('inter-renewed', 'Diff Intermediate', c.root, { ...ca, from: -5, to: 2500, key: 'inter' });
  c.interExpired = pki.cert('inter-expired', 'Diff Intermediate', c.root, { ...ca, from: -400, to: -1, key: 'inter' });
  c.interFuture = pki.cert('inter-future', 'Diff Intermediate', c.root, { ...ca, from: 2, to: 2000, key: 'inter' });
  c.interCross = pki.cert('inter-cross', 'Diff Intermediate', c.root2, { ...ca, from: -20, to: 2000, key: 'inter' });
  // Leaves: under the intermediate, directly under the root.
  c.leaf = pki.cert('leaf', 'diff-leaf', c.inter, { from: -10, to: 1000 });
  c.direct = pki.cert('direct', 'diff-direct', c.root, { from: -10, to: 1000 });
  // A short-lived intermediate (valid from day -5 to day 500) under a leaf valid from -10 to 1000:
  // at day -7 only the intermediate is not yet valid, at day 700 only it has expired.
  c.short = pki.cert('short', 'Diff Short Intermediate', c.root, { ...ca, from: -5, to: 500 });
  c.shortLeaf = pki.cert('short-leaf', 'diff-short-leaf', c.short, { from: -10, to: 1000 });
  // Two CAs of one name without key identifiers (what the tool made), and two with them.
  c.same1 = pki.cert('same1', 'Same Name CA', undefined, { ...ca, from: -30, to: 3650, keyIds: false });
  c.same2 = pki.cert('same2', 'Same Name CA', undefined, { ...ca, from: -30, to: 3650, keyIds: false });
  c.sameLeaf = pki.cert('same-leaf', 'diff-same-leaf', c.same1, { from: -10, to: 1000, keyIds: false });
  c.kid1 = pki.cert('kid1', 'Same Name CA With Key Ids', undefined, { ...ca, from: -30, to: 3650 });
  c.kid2 = pki.cert('kid2', 'Same Name CA With Key Ids', undefined, { ...ca, from: -30, to: 3650 });
  c.kidLeaf = pki.cert('kid-leaf', 'diff-kid-leaf', c.kid1, { from: -10, to: 1000 });
  // A CA no material trusts.
  c.rogue = pki.cert('rogue', 'Diff Rogue', undefined, { ...ca, from: -30, to: 3650 });

  const crl: Record<string, string> = {
    root: pki.crl(c.root),
    rootRevokesInter: pki.crl(c.root, { revoked: [c.inter] }),
    rootRevokesDirect: pki.crl(c.root, { revoked: [c.direct] }),
    inter: pki.crl(c.inter),
    interRevokesLeaf: pki.crl(c.inter, { revoked: [c.leaf] }),
    interStale: pki.crl(c.inter, { from: -60, to: -30 }),
    rootStale: pki.crl(c.root, { from: -60, to: -30 }),
    interFuture: pki.crl(c.inter, { from: 2, to: 30 }),
    root2: pki.crl(c.root2),
    rogue: pki.crl(c.rogue),
    interCritical: pki.crl(c.inter, { extensions: ['1.2.3.4 = critical,DER:05:00'] }),
    interNonCritical: pki.crl(c.inter, { extensions: ['1.2.3.4 = DER:05:00'] }),
    // A delta CRL (deltaCRLIndicator, base CRL number 1) revoking the leaf.
    interDeltaRevokesLeaf: pki.crl(c.inter, { revoked: [c.leaf], extensions: ['2.5.29.27 = critical,DER:02:01:01'] }),
    // An issuing distribution point: user certificates only (so not the intermediate).
    rootOnlyUser: pki.crl(c.root, { extensions: ['issuingDistributionPoint = critical,@idp', '[ idp ]', 'onlyuser = TRUE'] }),
    same1: pki.crl(c.same1),
    same2: pki.crl(c.same2),
    same2RevokesSameLeaf: pki.crl(c.same2, { revoked: [c.sameLeaf] }),
    kid1: pki.crl(c.kid1),
    kid2: pki.crl(c.kid2)
  };
  return { pki, c, crl };
}
