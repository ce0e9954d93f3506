import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certNames, generateCerts, isComplete, parseArgs } from '../../scripts/generate-certs';

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
