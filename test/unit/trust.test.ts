/**
 * src/tls/trust.ts: chains, validity and CRLs checked outside a handshake, the way
 * OpenSSL checks them in one.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { parseCertificates, parseCrl, trustStore, verifyChain } from '../../src/tls/trust';
import { ca, pem } from '../support/helpers';
import { HAVE_OPENSSL, makeCrl } from '../support/trust-fixtures';

const leaf = (name: string): X509Certificate[] => [new X509Certificate(pem(name).cert)];

describe('trust', () => {
  describe('verifyChain', () => {
    it('accepts a certificate the CA signed and refuses one of another CA, an expired one, or none', () => {
      const store = trustStore(ca(), undefined, []);
      expect(verifyChain(leaf('peer-1'), store)).to.equal(undefined);
      expect(verifyChain(leaf('next-peer-1'), store)).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      expect(verifyChain(leaf('rogue-peer'), store)).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      expect(verifyChain(leaf('expired-peer'), store)).to.equal('CERT_HAS_EXPIRED');
      expect(verifyChain([], store)).to.equal('NO_CERTIFICATE');
    });

    it('trusts every CA of a bundle (a CA rotation with overlap)', () => {
      const store = trustStore([ca(), ca('next-ca')], undefined, []);
      expect(verifyChain(leaf('peer-1'), store)).to.equal(undefined);
      expect(verifyChain(leaf('next-peer-1'), store)).to.equal(undefined);
      expect(parseCertificates(ca() + ca('next-ca'))).to.have.length(2);
    });
  });

  (HAVE_OPENSSL ? describe : describe.skip)('CRLs (made with the openssl command line)', () => {
    it('refuses exactly the certificates a CRL of their issuer revokes', () => {
      const store = trustStore(ca(), makeCrl('ca', ['peer-2', 'peer-4']), []);
      expect(store.crls[0]!.revoked.size).to.equal(2);
      expect(verifyChain(leaf('peer-2'), store)).to.equal('CERT_REVOKED');
      expect(verifyChain(leaf('peer-4'), store)).to.equal('CERT_REVOKED');
      expect(verifyChain(leaf('peer-1'), store)).to.equal(undefined);
    });

    it('throws for a CRL that no CA in ca signed, and for bytes that are not a CRL', () => {
      const crl = makeCrl('next-ca', ['next-peer-1']);
      expect(() => trustStore(ca(), crl, [])).to.throw(/not signed by any CA/);
      expect(() => parseCrl(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), parseCertificates(ca()))).to.throw();
      expect(() => parseCrl(Buffer.from([0x30, 0x85]), parseCertificates(ca()))).to.throw();
    });
  });
});
