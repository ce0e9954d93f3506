import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { certNames, generateCerts, isComplete, makeCa, parseArgs, RefusedError, revokeCerts } from '../../scripts/generate-certs';
import { normaliseSerial, trustStore } from '../../src/tls/trust';
import { HAVE_OPENSSL } from '../support/trust-fixtures';

describe('scripts/generate-certs', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'certs-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const cert = (name: string): X509Certificate => new X509Certificate(readFileSync(join(dir, `${name}.crt`)));

  it('writes a CA, peers and hostile fixtures, keys mode 0600, ECDSA P-256 by default', async () => {
    const { generated } = await generateCerts({ dir, peers: 2 });
    expect(generated).to.equal(true);
    expect(isComplete(dir, 2)).to.equal(true);
    for (const name of certNames(2)) expect(statSync(join(dir, `${name}.key`)).mode & 0o777, name).to.equal(0o600);
    const ca = cert('ca');
    const peer = cert('peer-2');
    expect(peer.verify(ca.publicKey)).to.equal(true);
    expect(peer.subject).to.include('CN=peer-2');
    expect(peer.subjectAltName).to.include('DNS:localhost').and.include('IP Address:127.0.0.1').and.include('URI:spiffe://gossipmonger.test/peer-2');
    expect(peer.publicKey.asymmetricKeyType).to.equal('ec');
    expect(peer.checkHost('localhost')).to.equal('localhost');
    expect(cert('rogue-peer').verify(ca.publicKey)).to.equal(false);
    expect(Date.parse(cert('expired-peer').validTo)).to.be.below(Date.now());
    expect(cert('wrong-name-peer').checkHost('localhost')).to.equal(undefined);
    expect(cert('next-peer-1').verify(cert('next-ca').publicKey)).to.equal(true);
  });

  it('is idempotent, and adds peers without replacing a valid CA', async () => {
    await generateCerts({ dir, peers: 1 });
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const peer1 = readFileSync(join(dir, 'peer-1.crt'), 'utf8');
    expect((await generateCerts({ dir, peers: 1 })).generated).to.equal(false);
    expect((await generateCerts({ dir, peers: 3 })).generated).to.equal(true);
    expect(readFileSync(join(dir, 'ca.crt'), 'utf8')).to.equal(ca);
    expect(readFileSync(join(dir, 'peer-1.crt'), 'utf8')).to.equal(peer1);
    expect(cert('peer-3').verify(cert('ca').publicKey)).to.equal(true);
  });

  it('regenerates everything when the CA is missing, and with force', async () => {
    await generateCerts({ dir, peers: 1 });
    const peer1 = readFileSync(join(dir, 'peer-1.crt'), 'utf8');
    rmSync(join(dir, 'ca.crt'));
    await generateCerts({ dir, peers: 1 });
    expect(readFileSync(join(dir, 'peer-1.crt'), 'utf8')).to.not.equal(peer1);
    expect(cert('peer-1').verify(cert('ca').publicKey)).to.equal(true);
  });

  it('writes RSA keys with --rsa', async function () {
    // CPU-bound and random in length: nine RSA 2048 keys (primes are searched
    // for) took 2.5-3.5 s alone and over 15 s beside two busy loops and other
    // work. Liveness only.
    this.timeout(60000);
    await generateCerts({ dir, peers: 1, ...parseArgs(['--rsa']) });
    expect(cert('peer-1').publicKey.asymmetricKeyType).to.equal('rsa');
  });

  it('parses its flags and refuses unknown ones', () => {
    expect(parseArgs(['--out', dir, '--peers', '7', '--force'])).to.deep.equal({ dir, peers: 7, force: true });
    expect(parseArgs(['--help'])).to.deep.equal({ help: true });
    expect(() => parseArgs(['--peers', '0'])).to.throw(/--peers/);
    expect(() => parseArgs(['--nope'])).to.throw(/unknown argument/);
  });
});

describe('gossipmonger-tls-certs: certificates that rotate and revoke, in a folder others may touch', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'certs-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const x509 = (file: string): X509Certificate => new X509Certificate(readFileSync(file));
  /** The 20-byte key identifier after an extension's OID in a certificate's DER (an independent reading of the bytes). */
  const keyId = (cert: X509Certificate, extension: 'subject' | 'authority'): string | undefined => {
    const raw = cert.raw.toString('hex');
    // subjectKeyIdentifier: OID 2.5.29.14, OCTET STRING { OCTET STRING (20) };
    // authorityKeyIdentifier: OID 2.5.29.35, OCTET STRING { SEQUENCE { [0] (20) } }.
    const pattern = extension === 'subject' ? /0603551d0e04160414([0-9a-f]{40})/ : /0603551d23041830168014([0-9a-f]{40})/;
    return pattern.exec(raw)?.[1];
  };
  const named = (out: string, ...extra: string[]): ReturnType<typeof parseArgs> => parseArgs(['--out', out, '--peer', 'node-a', '--peer', 'node-b', '--host', 'localhost', ...extra]);

  it('every CA has a subject of its own and key identifiers, every certificate names its issuer\'s key, and every PEM file ends with a newline', async () => {
    const first = join(dir, 'one');
    const second = join(dir, 'two');
    await generateCerts(named(first));
    await generateCerts(named(second));
    await generateCerts({ dir: join(dir, 'test-set'), peers: 1 });
    revokeCerts({ dir: first, revoke: ['node-b'] });
    const [ca1, ca2] = [x509(join(first, 'ca.crt')), x509(join(second, 'ca.crt'))];
    expect(ca1.subject).to.match(/^CN=gossipmonger cluster CA \d{4}-\d{2}-\d{2} [0-9a-f]{8}$/);
    expect(ca1.subject, 'two runs, two names').to.not.equal(ca2.subject);
    for (const folder of [first, second]) {
      const ca = x509(join(folder, 'ca.crt'));
      const leaf = x509(join(folder, 'node-a.crt'));
      expect(keyId(ca, 'subject'), 'CA subjectKeyIdentifier').to.match(/^[0-9a-f]{40}$/);
      expect(keyId(leaf, 'subject'), 'leaf subjectKeyIdentifier').to.match(/^[0-9a-f]{40}$/);
      expect(keyId(leaf, 'authority'), 'leaf authorityKeyIdentifier = its CA\'s key').to.equal(keyId(ca, 'subject'));
      expect(leaf.verify(ca.publicKey)).to.equal(true);
    }
    expect(keyId(ca1, 'subject')).to.not.equal(keyId(ca2, 'subject'));
    const pemFiles = [first, second, join(dir, 'test-set')].flatMap((folder) => readdirSync(folder).filter((f) => /\.(crt|key|crl)$/.test(f)).map((f) => join(folder, f)));
    expect(pemFiles.length).to.be.above(20);
    for (const file of pemFiles) expect(readFileSync(file, 'utf8').endsWith('-----\n'), file).to.equal(true);
    // So `cat` makes a bundle of two certificates, each block whole.
    const bundle = readFileSync(join(first, 'ca.crt'), 'utf8') + readFileSync(join(second, 'ca.crt'), 'utf8');
    expect(bundle.match(/^-----BEGIN CERTIFICATE-----$/gm)).to.have.length(2);
    expect(bundle).to.not.include('----------');
  });

  it('refuses a CA it was not asked to reuse, names it, and reuses it with --reuse-ca', async () => {
    // Another CA planted in the folder (here by this user, so only the flag stands in the way).
    const planted = await makeCa('attacker CA');
    writeFileSync(join(dir, 'ca.crt'), planted.cert, { mode: 0o644 });
    writeFileSync(join(dir, 'ca.key'), planted.key, { mode: 0o600 });
    const fingerprint = new X509Certificate(planted.cert).fingerprint256;
    let refused: Error | undefined;
    await generateCerts(named(dir)).catch((error: Error) => { refused = error; });
    expect(refused).to.be.instanceOf(RefusedError);
    expect(refused!.message).to.include('CN=attacker CA').and.include(fingerprint).and.include('--reuse-ca');
    expect(existsSync(join(dir, 'node-a.crt')), 'nothing issued').to.equal(false);
    const reused = await generateCerts(named(dir, '--reuse-ca'));
    expect(reused.ca).to.deep.equal({ subject: 'CN=attacker CA', fingerprint256: fingerprint, created: false });
    expect(x509(join(dir, 'node-a.crt')).verify(new X509Certificate(planted.cert).publicKey)).to.equal(true);
  });

  it('with --reuse-ca, refuses a CA key others can read and CA files of another user', async () => {
    await generateCerts(named(dir));
    chmodSync(join(dir, 'ca.key'), 0o644);
    await expectRefused(generateCerts(named(dir, '--reuse-ca')), /ca\.key is readable or writable by other users/);
    chmodSync(join(dir, 'ca.key'), 0o600);
    if (process.getuid?.() === 0) {
      // Root can make the files another user's, as a planted pair would be.
      for (const name of ['ca.crt', 'ca.key']) chownSync(join(dir, name), 65534, 65534);
      await expectRefused(generateCerts(named(dir, '--reuse-ca')), /belongs to another user \(uid 65534\)/);
      await expectRefused(Promise.resolve().then(() => revokeCerts({ dir, revoke: ['node-a'] })), /belongs to another user/);
    }
  });

  it('never writes through a symbolic link planted in the folder, and never overwrites another user\'s file', async () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'owned by someone else\n');
    const out = join(dir, 'out');
    mkdirSync(out);
    // A link where the CA key will go, and one (dangling) where a peer key will go.
    symlinkSync(victim, join(out, 'ca.key'));
    await expectRefused(generateCerts(named(out)), /already holds a CA/);
    await expectRefused(generateCerts(named(out, '--force')), /ca\.key is a symbolic link/);
    rmSync(join(out, 'ca.key'));
    symlinkSync(join(dir, 'dangling'), join(out, 'node-b.key'));
    await expectRefused(generateCerts(named(out)), /node-b\.key is a symbolic link/);
    expect(readFileSync(victim, 'utf8')).to.equal('owned by someone else\n');
    expect(existsSync(join(dir, 'dangling')), 'nothing created through the dangling link').to.equal(false);
    // The test set too.
    const set = join(dir, 'set');
    mkdirSync(set);
    symlinkSync(victim, join(set, 'peer-1.key'));
    await expectRefused(generateCerts({ dir: set, peers: 1 }), /peer-1\.key is a symbolic link/);
    expect(readFileSync(victim, 'utf8')).to.equal('owned by someone else\n');
    if (process.getuid?.() === 0) {
      const theirs = join(dir, 'theirs');
      mkdirSync(theirs);
      writeFileSync(join(theirs, 'node-a.key'), 'theirs\n');
      chownSync(join(theirs, 'node-a.key'), 65534, 65534);
      await expectRefused(generateCerts(named(theirs)), /node-a\.key belongs to another user/);
      expect(readFileSync(join(theirs, 'node-a.key'), 'utf8')).to.equal('theirs\n');
    }
  });

  it('replaces a key with a new file created 0600, never rewriting the old one in place', async () => {
    await generateCerts(named(dir));
    const file = join(dir, 'node-a.key');
    chmodSync(file, 0o644); // as an older tool (or a careless copy) left it
    const before = statSync(file);
    const old = readFileSync(file, 'utf8');
    const reader = openSync(file, 'r'); // someone holding the old file open
    try {
      await generateCerts(named(dir, '--force'));
      const after = statSync(file);
      expect(after.ino, 'a new file').to.not.equal(before.ino);
      expect(after.mode & 0o777).to.equal(0o600);
      const seen = Buffer.alloc(4096);
      const n = readSync(reader, seen, 0, seen.length, 0);
      expect(seen.subarray(0, n).toString('utf8'), 'the old file still holds the old key, never the new one').to.equal(old);
      expect(readFileSync(file, 'utf8')).to.not.equal(old);
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp')), 'no temporary file left').to.deep.equal([]);
    } finally {
      closeSync(reader);
    }
  });

  it('--revoke writes a CRL signed by the folder\'s CA, accumulating, and a revoked peer is issued anew', async () => {
    await generateCerts(parseArgs(['--out', dir, '--peer', 'node-a', '--peer', 'node-b', '--peer', 'node-c']));
    const serial = (name: string): string => x509(join(dir, `${name}.crt`)).serialNumber;
    const first = revokeCerts(parseArgs(['--out', dir, '--revoke', 'node-b']));
    expect(first).to.include({ number: 1, total: 1 });
    expect(first.revoked).to.deep.equal(['node-b']);
    const second = revokeCerts(parseArgs(['--out', dir, '--revoke', 'node-c', '--revoke', 'node-b', '--crl-days', '7']));
    expect(second).to.include({ number: 2, total: 2 });
    expect(second.revoked).to.deep.equal(['node-c']);
    const crl = readFileSync(join(dir, 'ca.crl'), 'utf8');
    expect(crl.endsWith('-----END X509 CRL-----\n')).to.equal(true);
    // Node's own TLS takes it (as tls.crl), and an independent CRL reader finds exactly the revoked serials.
    expect(() => createSecureContext({ ca: readFileSync(join(dir, 'ca.crt')), crl })).to.not.throw();
    const store = trustStore(readFileSync(join(dir, 'ca.crt'), 'utf8'), crl, []);
    expect([...store.crls[0]!.revoked].sort()).to.deep.equal([serial('node-b'), serial('node-c')].map(normaliseSerial).sort());
    if (HAVE_OPENSSL) {
      const verify = (name: string): string => {
        try {
          return execFileSync('openssl', ['verify', '-crl_check', '-CAfile', join(dir, 'ca.crt'), '-CRLfile', join(dir, 'ca.crl'), join(dir, `${name}.crt`)], { encoding: 'utf8', stdio: 'pipe' });
        } catch (error) {
          return String((error as { stdout?: string }).stdout) + String((error as { stderr?: string }).stderr);
        }
      };
      expect(execFileSync('openssl', ['crl', '-in', join(dir, 'ca.crl'), '-CAfile', join(dir, 'ca.crt'), '-verify', '-noout'], { encoding: 'utf8', stdio: 'pipe' }).toString()).to.equal('');
      expect(verify('node-a')).to.match(/: OK/);
      expect(verify('node-b')).to.match(/certificate revoked/);
    }
    // A certificate of another CA cannot be revoked here.
    const other = join(dir, 'other');
    await generateCerts(parseArgs(['--out', other, '--peer', 'node-x']));
    copyFileSync(join(other, 'node-x.crt'), join(dir, 'node-x.crt'));
    expect(() => revokeCerts({ dir, revoke: ['node-x'] })).to.throw(RefusedError, /not issued by the CA/);
    // --reuse-ca issues the revoked peer a new certificate, and keeps the others.
    const nodeA = readFileSync(join(dir, 'node-a.crt'), 'utf8');
    const again = await generateCerts(parseArgs(['--out', dir, '--peer', 'node-a', '--peer', 'node-b', '--reuse-ca']));
    expect(again.written).to.deep.equal(['node-b']);
    expect(readFileSync(join(dir, 'node-a.crt'), 'utf8')).to.equal(nodeA);
  });

  it('parses --reuse-ca, --revoke, --crl and --crl-days, and refuses them where they do not belong', () => {
    expect(parseArgs(['--out', dir, '--revoke', 'node-a', '--revoke', 'node-b', '--crl-days', '7'])).to.deep.equal({ dir, revoke: ['node-a', 'node-b'], crlDays: 7 });
    expect(parseArgs(['--out', dir, '--crl'])).to.deep.equal({ dir, crl: true });
    expect(parseArgs(['--peer', 'a', '--reuse-ca']).reuseCa).to.equal(true);
    for (const bad of [['--revoke', 'a', '--peer', 'b'], ['--crl', '--force'], ['--crl-days', '3'], ['--reuse-ca'], ['--revoke', '../x'], ['--revoke']]) {
      expect(() => parseArgs(bad), bad.join(' ')).to.throw(/--/);
    }
  });
});

async function expectRefused (promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  let error: unknown;
  await promise.catch((e: unknown) => { error = e; });
  expect(error, String(pattern)).to.be.instanceOf(RefusedError);
  expect((error as Error).message).to.match(pattern);
}
