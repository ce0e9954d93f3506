/**
 * watchCertificates(): certificate files followed on disk, validated before
 * they are swapped in, with the current material kept when they are not usable.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { issueCrl } from '../../scripts/pki';
import type { CertificateWatch } from '../../src/options';
import { HOST, TcpTransport, ca, closeAll, codeOf, digestFrame, listening, pem, record, sleep, track, until } from '../support/helpers';
import { HAVE_OPENSSL, makeCrl } from '../support/trust-fixtures';

let dir: string;
const file = (name: string): string => join(dir, name);

/** Writes key/cert/ca files of `peer` signed by `caName` (or the given texts). */
function writeSet (set: { key?: string; cert?: string; ca?: string }): void {
  if (set.cert !== undefined) writeFileSync(file('cert.pem'), set.cert);
  if (set.key !== undefined) writeFileSync(file('key.pem'), set.key);
  if (set.ca !== undefined) writeFileSync(file('ca.pem'), set.ca);
}

const expiryOf = (peer: string): number => Date.parse(new X509Certificate(pem(peer).cert).validTo);

/**
 * True when a TLS client trusting `caName` completes a handshake with `t` and
 * its frame is delivered; false when the connection closes first. Decided by
 * events alone (no time limit: a slow handshake on a loaded machine is not a
 * refusal), and the client ends only once its frame arrived, so the
 * transport sees no connection cut short.
 */
async function clientTrusting (t: TcpTransport, caName: string, peer: string): Promise<boolean> {
  const socket = tlsConnect({ host: HOST, port: t.port, ...pem(peer), ca: ca(caName) });
  socket.on('error', () => {});
  const gone = new Promise<false>((resolve) => socket.once('close', () => resolve(false)));
  try {
    if (!await Promise.race([new Promise<true>((resolve) => socket.once('secureConnect', () => resolve(true))), gone])) return false;
    let onDigest: (sender: { id: string }) => void = () => {};
    const delivered = new Promise<true>((resolve) => { onDigest = (sender) => { if (sender.id === peer) resolve(true); }; });
    t.on('digest', onDigest);
    socket.write(digestFrame(peer) + '\n');
    const served = await Promise.race([delivered, gone]);
    t.removeListener('digest', onDigest);
    return served;
  } finally {
    socket.end();
  }
}

describe('TcpTransport#watchCertificates', () => {
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gm-certs-'));
    writeSet({ ...pem('peer-1'), ca: ca() });
  });
  afterEach(async () => {
    await closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  async function watched (extra: Record<string, unknown> = {}, tls: Record<string, unknown> = {}): Promise<{ t: TcpTransport; errors: Error[]; watch: CertificateWatch }> {
    const t = await listening('mtls', { keepAlive: false, tls: { ...pem('peer-1'), ca: ca(), requestCert: true, ...tls } });
    const errors = record(t).errors;
    const watch = t.watchCertificates({ key: file('key.pem'), cert: file('cert.pem'), ca: file('ca.pem'), debounce: 40, interval: 60000, ...extra });
    await sleep(20);
    return { t, errors, watch };
  }

  it('swaps in a good new set once, after the writes of key, certificate and CA settle', async () => {
    const { t, errors } = await watched();
    expect(t.stats().certificates.expires).to.equal(expiryOf('peer-1'));
    // Written one file at a time, a few ms apart: read once, together.
    writeSet({ cert: pem('next-peer-1').cert });
    await sleep(5);
    writeSet({ key: pem('next-peer-1').key });
    await sleep(5);
    writeSet({ ca: ca('next-ca') });
    await until(() => t.stats().certificates.expires === expiryOf('next-peer-1'), undefined, 'the new certificate');
    await sleep(100);
    expect(errors).to.deep.equal([]);
    expect(await clientTrusting(t, 'next-ca', 'next-peer-2')).to.equal(true);
  });

  const refusals: Array<[string, () => { key?: string; cert?: string; ca?: string }, string]> = [
    ['a key that does not match the certificate', () => ({ cert: pem('peer-2').cert, key: pem('peer-3').key }), 'key-mismatch'],
    ['an expired certificate', () => ({ ...pem('expired-peer') }), 'expired'],
    ['a certificate that does not chain to the CA', () => ({ ...pem('next-peer-1') }), 'chain']
  ];
  for (const [what, set, reason] of refusals) {
    it(`refuses ${what} with ERR_CERT_RELOAD (${reason}) and keeps serving with the old material`, async () => {
      const { t, errors, watch } = await watched();
      writeSet(set());
      await until(() => errors.length === 1, undefined, 'the refusal');
      expect(codeOf(errors[0])).to.equal('ERR_CERT_RELOAD');
      expect(errors[0]).to.have.property('reason', reason);
      expect(t.stats().certificates.expires).to.equal(expiryOf('peer-1'));
      expect(await clientTrusting(t, 'ca', 'peer-3')).to.equal(true);
      // Read again (as a poll would): the same bad set is not reported twice.
      expect(await watch.reload()).to.equal(false);
      expect(errors, 'reported once').to.have.length(1);
    });
  }

  it('does not report a set that disagrees only between two renames (certificate, then key, then CA), and applies the completed one', async () => {
    const { t, errors, watch } = await watched();
    const next1 = pem('next-peer-1');
    // Each file read at once after its rename, as a change event would on a
    // machine too slow to write the next one within the debounce.
    writeSet({ cert: next1.cert });
    expect(await watch.reload(), 'the new certificate with the old key').to.equal(false);
    writeSet({ key: next1.key });
    expect(await watch.reload(), 'the new pair with the old CA').to.equal(false);
    writeSet({ ca: ca('next-ca') });
    expect(await watch.reload()).to.equal(true);
    expect(t.stats().certificates.expires).to.equal(expiryOf('next-peer-1'));
    // Past every re-read the watcher scheduled (retries 5 x debounce 40 ms): nothing was reported.
    await sleep(40 * 8);
    expect(errors).to.deep.equal([]);
  });

  it("under 'sender-id', refuses a certificate that no longer names this node's id", async () => {
    const { t, errors } = await watched({}, { authorize: 'sender-id' });
    writeSet({ ...pem('peer-2') });
    await until(() => errors.length === 1, undefined, 'the refusal');
    expect(errors[0]).to.include({ code: 'ERR_CERT_RELOAD', reason: 'identity' });
    expect(t.stats().certificates.expires).to.equal(expiryOf('peer-1'));
  });

  it('waits for a half-written file instead of loading it or reporting it', async () => {
    const { t, errors } = await watched();
    const next1 = pem('next-peer-1');
    writeSet({ key: next1.key, ca: ca('next-ca') });
    writeSet({ cert: next1.cert.slice(0, 200) });
    await sleep(90);
    writeSet({ cert: next1.cert });
    await until(() => t.stats().certificates.expires === expiryOf('next-peer-1'), undefined, 'the completed certificate');
    expect(errors).to.deep.equal([]);
  });

  it('reports a file that stays unreadable after the retries, and keeps the old material', async () => {
    const { t, errors } = await watched({ retries: 2 });
    writeSet({ cert: '-----BEGIN CERTIFICATE-----\nnot base64 at all\n' });
    await until(() => errors.length === 1, undefined, 'the refusal');
    expect(errors[0]).to.include({ code: 'ERR_CERT_RELOAD', reason: 'parse' });
    expect(t.stats().certificates.expires).to.equal(expiryOf('peer-1'));
  });

  it('notices changes by polling when change events are off', async () => {
    const { t, errors } = await watched({ watch: false, interval: 50 });
    writeSet({ ...pem('next-peer-1'), ca: ca('next-ca') });
    await until(() => t.stats().certificates.expires === expiryOf('next-peer-1'), undefined, 'the polled change');
    expect(errors).to.deep.equal([]);
  });

  (HAVE_OPENSSL ? it : it.skip)('applies a CRL file: the revoked peer\'s live connection closes; a CRL from another CA is refused', async () => {
    writeFileSync(file('crl.pem'), makeCrl('ca', []));
    const { t, errors } = await watched({ crl: file('crl.pem') });
    const seen = record(t);
    const peer = track(new TcpTransport({ host: HOST, port: 0, keepAlive: true, tls: { ...pem('peer-2'), ca: ca(), requestCert: true } }));
    record(peer);
    peer.digest({ id: 'peer-1', transport: { host: HOST, port: t.port } }, { id: 'peer-2' }, []);
    await until(() => seen.digests.length === 1);
    writeFileSync(file('crl.pem'), makeCrl('next-ca', []));
    await until(() => errors.length === 1, undefined, 'the foreign CRL to be refused');
    // With a CRL set, OpenSSL needs one from the CA that issued every certificate: this set would refuse every peer.
    expect(errors[0]).to.include({ code: 'ERR_CERT_RELOAD', reason: 'crl-missing' });
    expect((errors[0] as Error).message).to.match(/files\.crl has no CRL from .* of files\.ca/);
    expect(t.stats().connections.open).to.equal(1);
    writeFileSync(file('crl.pem'), makeCrl('ca', ['peer-2']));
    await until(() => errors.length === 2, undefined, 'the revoked connection to close');
    expect(errors[1]).to.include({ code: 'ERR_PEER_UNTRUSTED', reason: 'CERT_REVOKED', subject: 'peer-2' });
    await until(() => t.stats().connections.open === 0);
  });

  it('reports files that do not exist (ERR_CERT_RELOAD, reason missing) once, promptly, and loads them when they appear', async () => {
    const t = await listening('mtls', { keepAlive: false, tls: { ...pem('peer-1'), ca: ca(), requestCert: true } });
    const errors = record(t).errors;
    // A typo in one path, and a CRL that was never written.
    const watch = t.watchCertificates({ key: file('key.pem'), cert: file('cert.pem'), ca: file('ca-typo.pem'), crl: file('crl.pem'), debounce: 40, interval: 100 });
    await until(() => errors.length === 1, undefined, 'the missing files to be reported');
    expect(errors[0]).to.include({ code: 'ERR_CERT_RELOAD', reason: 'missing' });
    expect(errors[0]!.message).to.include(`files.ca (${file('ca-typo.pem')})`).and.include(`files.crl (${file('crl.pem')})`).and.not.include('files.key');
    // Polls go on, the report is not repeated.
    await sleep(400);
    expect(errors).to.have.length(1);
    writeSet({ ...pem('next-peer-1'), ca: ca('next-ca') });
    writeFileSync(file('ca-typo.pem'), ca('next-ca'));
    writeFileSync(file('crl.pem'), issueCrl({ issuer: pem('next-ca'), revoked: [], number: 1, thisUpdate: new Date(Date.now() - 60000), nextUpdate: new Date(Date.now() + 86400000) }));
    await until(() => watch.applied === 1, undefined, 'the files, once there, to be applied');
    expect(t.stats().certificates.expires).to.equal(expiryOf('next-peer-1'));
    expect(errors).to.have.length(1);
  });

  it('given PEM contents where paths belong, throws a TypeError naming the field without quoting the contents', async () => {
    const { t } = await watched();
    const { key, cert } = pem('peer-1');
    for (const [field, files] of [['key', { key, cert: file('cert.pem'), ca: file('ca.pem') }], ['cert', { key: file('key.pem'), cert, ca: file('ca.pem') }], ['ca', { key: file('key.pem'), cert: file('cert.pem'), ca: ca() }]] as const) {
      let error: Error | undefined;
      try {
        t.watchCertificates(files);
      } catch (e) {
        error = e as Error;
      }
      expect(error, field).to.be.instanceOf(TypeError);
      expect(error!.message).to.match(new RegExp(`^files\\.${field} must be the path of a file, not its contents`));
      expect(error!.message).to.not.include('-----BEGIN').and.not.include(key.split('\n')[1]!).and.not.include(cert.split('\n')[1]!);
    }
  });

  it('follows files replaced by rename, one replacement after another, without waiting for the poll', async () => {
    // interval 60 s: only change events can be seen within the test.
    const { t, errors, watch } = await watched();
    const replace = (name: string, text: string): void => {
      writeFileSync(file(`${name}.new`), text);
      renameSync(file(`${name}.new`), file(name));
    };
    replace('cert.pem', pem('next-peer-1').cert);
    replace('key.pem', pem('next-peer-1').key);
    replace('ca.pem', ca('next-ca'));
    await until(() => watch.applied === 1, undefined, 'the first replacement');
    replace('cert.pem', pem('next-peer-2').cert);
    replace('key.pem', pem('next-peer-2').key);
    await until(() => watch.applied === 2, undefined, 'the second replacement of the same paths');
    expect(t.stats().certificates.expires).to.equal(expiryOf('next-peer-2'));
    expect(errors).to.deep.equal([]);
  });

  it('throws naming the field for a bad argument, and needs TLS', async () => {
    const { t } = await watched();
    expect(() => t.watchCertificates({ key: 'k', cert: 'c' } as never)).to.throw(TypeError, /files\.ca/);
    expect(() => t.watchCertificates({ key: 'k', cert: 'c', ca: 'a', debounse: 5 } as never)).to.throw(TypeError, /debounce/);
    const plain = await listening('plain');
    expect(() => plain.watchCertificates({ key: 'k', cert: 'c', ca: 'a' })).to.throw(TypeError, /options\.tls/);
  });
});
