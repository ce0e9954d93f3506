/**
 * Trust material refused where it enters (src/tls/material.ts): the
 * constructor, setSecureContext() and watchCertificates() refuse a `ca`
 * bundle whose PEM blocks do not all parse (what `cat` makes of files without
 * a final newline) and a CRL past its nextUpdate, with a coded error, before
 * anything is swapped in; the material in place keeps serving.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOST, TcpTransport, ca, closeAll, codeOf, listening, pem, record, track, until } from '../support/helpers';
import { HAVE_OPENSSL, makeCrl } from '../support/trust-fixtures';

/** Two CA files joined by `cat` when neither ends with a newline. */
const glued = (...names: string[]): string => names.map((name) => ca(name).trimEnd()).join('');
const joined = (...names: string[]): string => names.map((name) => `${ca(name).trimEnd()}\n`).join('');

function thrown (fn: () => unknown): Error & { reason?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { reason?: string };
  }
  throw new Error('did not throw');
}

(HAVE_OPENSSL ? describe : describe.skip)('trust material refused where it enters', () => {
  afterEach(closeAll);

  it('the constructor refuses a glued ca bundle, saying how many certificates OpenSSL reads, and a CRL past its nextUpdate', () => {
    const glue = thrown(() => new TcpTransport({ host: HOST, port: 0, tls: { ...pem('peer-1'), ca: glued('ca', 'next-ca') } }));
    expect(codeOf(glue)).to.equal('ERR_TRUST_MATERIAL');
    expect(glue.reason).to.equal('ca-unreadable');
    expect(glue.message).to.include('options.tls.ca').and.include('reads 0 certificate(s) of 2');
    // The same two files joined with a newline are one good bundle.
    track(new TcpTransport({ host: HOST, port: 0, tls: { ...pem('peer-1'), ca: joined('ca', 'next-ca') } }));

    const stale = thrown(() => new TcpTransport({ host: HOST, port: 0, tls: { ...pem('peer-1'), ca: ca(), crl: makeCrl('ca', [], [-60, -30]) } }));
    expect(codeOf(stale)).to.equal('ERR_TRUST_MATERIAL');
    expect(stale.reason).to.equal('crl-expired');
    expect(stale.message).to.include('options.tls.crl').and.include('nextUpdate');
  });

  it('setSecureContext() refuses them before swapping anything: the live connection stays, and new handshakes still use the current material', async () => {
    const receiver = await listening('mtls', { keepAlive: false }, 'peer-1');
    const seen = record(receiver);
    const to = { id: 'peer-1', transport: { host: HOST, port: receiver.port } };
    const peer = track(new TcpTransport({ host: HOST, port: 0, keepAlive: true, tls: { ...pem('peer-2'), ca: ca(), requestCert: true } }));
    record(peer);
    peer.digest(to, { id: 'peer-2' }, []);
    await until(() => seen.digests.length === 1, 5000, 'the live connection');

    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ ca: glued('ca', 'next-ca') }, 'ca-unreadable'],
      [{ ...pem('next-peer-1'), ca: glued('next-ca', 'ca') }, 'ca-unreadable'],
      [{ crl: makeCrl('ca', ['peer-2'], [-60, -30]) }, 'crl-expired']
    ];
    for (const [material, reason] of refusals) {
      const error = thrown(() => receiver.setSecureContext(material));
      expect(codeOf(error), reason).to.equal('ERR_TRUST_MATERIAL');
      expect(error.reason).to.equal(reason);
      expect(error.message).to.include('setSecureContext(tlsOptions)');
    }
    // The re-check of a rotation is synchronous: had anything been swapped in, the connection would be closed by now.
    expect(seen.errors.map(codeOf)).to.deep.equal([]);
    expect(receiver.stats().connections.open).to.equal(1);
    // The current material still serves: the same connection delivers, and a new peer of the current CA is accepted.
    peer.digest(to, { id: 'peer-2' }, []);
    await until(() => seen.digests.length === 2, 5000, 'a frame on the live connection');
    const fresh = track(new TcpTransport({ host: HOST, port: 0, tls: { ...pem('peer-3'), ca: ca(), requestCert: true } }));
    record(fresh);
    fresh.digest(to, { id: 'peer-3' }, []);
    await until(() => seen.digests.length === 3, 5000, 'a new handshake under the current material');
    expect(receiver.stats().connections.accepted).to.equal(2);
    expect(seen.errors.map(codeOf)).to.deep.equal([]);
  });

  it('watchCertificates() refuses them with ERR_CERT_RELOAD and the same reasons, keeping the current material', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gm-material-'));
    const file = (name: string): string => join(dir, name);
    try {
      writeFileSync(file('key.pem'), pem('peer-1').key);
      writeFileSync(file('cert.pem'), pem('peer-1').cert);
      writeFileSync(file('ca.pem'), ca());
      writeFileSync(file('crl.pem'), makeCrl('ca', []));
      const t = await listening('mtls', { keepAlive: false, tls: { ...pem('peer-1'), ca: ca(), requestCert: true } });
      const seen = record(t);
      t.watchCertificates({ key: file('key.pem'), cert: file('cert.pem'), ca: file('ca.pem'), crl: file('crl.pem'), debounce: 20, retries: 1, interval: 60000 });
      const to = { id: 'peer-1', transport: { host: HOST, port: t.port } };
      const peer = track(new TcpTransport({ host: HOST, port: 0, keepAlive: true, tls: { ...pem('peer-2'), ca: ca(), requestCert: true } }));
      record(peer);
      peer.digest(to, { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 1, 5000, 'the live connection');

      writeFileSync(file('ca.pem'), glued('ca', 'next-ca'));
      await until(() => seen.errors.length === 1, 5000, 'the glued bundle refused');
      expect(seen.errors[0]).to.include({ code: 'ERR_CERT_RELOAD', reason: 'ca-unreadable' });
      expect(seen.errors[0]!.message).to.include('reads 0 certificate(s) of 2');

      writeFileSync(file('ca.pem'), ca());
      writeFileSync(file('crl.pem'), makeCrl('ca', ['peer-2'], [-60, -30]));
      await until(() => seen.errors.length === 2, 5000, 'the stale CRL refused');
      expect(seen.errors[1]).to.include({ code: 'ERR_CERT_RELOAD', reason: 'crl-expired' });

      // Neither was applied: the connection the stale CRL names is open and delivers.
      peer.digest(to, { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 2, 5000, 'a frame on the live connection');
      expect(t.stats().connections.open).to.equal(1);
      expect(seen.errors).to.have.length(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
