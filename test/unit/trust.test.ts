/**
 * src/tls/trust.ts: chains, validity and CRLs checked outside a handshake, the way
 * OpenSSL checks them in one.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { checkTrustMaterial } from '../../src/tls/material';
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
      // Read as OpenSSL reads a bundle: each block on its own lines, or none at all.
      expect(parseCertificates(`${ca().trimEnd()}\n${ca('next-ca')}`)).to.have.length(2);
      expect(parseCertificates(ca().trimEnd() + ca('next-ca'))).to.have.length(0);
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

    it('refuses every certificate of a CA whose CRL is missing, as OpenSSL does once any CRL is set', () => {
      const store = trustStore(ca(), makeCrl('next-ca', ['next-peer-1']), []);
      expect(verifyChain(leaf('peer-1'), store)).to.equal('UNABLE_TO_GET_CRL');
    });

    it('throws for bytes that are not a CRL', () => {
      expect(() => parseCrl(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]))).to.throw();
      expect(() => parseCrl(Buffer.from([0x30, 0x85]))).to.throw();
      expect(() => parseCrl(Buffer.from([0x30, 0x80, 0x00, 0x00]))).to.throw();
    });
  });

  describe('checkTrustMaterial', () => {
    const refusal = (fn: () => void): { reason: string; message: string; code: string } => {
      try {
        fn();
      } catch (error) {
        return error as { reason: string; message: string; code: string };
      }
      throw new Error('not refused');
    };

    it('says how many certificates OpenSSL reads of a bundle whose blocks do not all parse', () => {
      const corrupt = `${ca().trimEnd()}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n${ca('next-ca')}`;
      expect(refusal(() => checkTrustMaterial(corrupt, undefined, 'tls'))).to.include({ code: 'ERR_TRUST_MATERIAL', reason: 'ca-unreadable' });
      expect(refusal(() => checkTrustMaterial(corrupt, undefined, 'tls')).message).to.match(/^tls\.ca: OpenSSL reads 1 certificate\(s\) of 3/);
      expect(refusal(() => checkTrustMaterial([ca(), ca().trimEnd() + ca('next-ca')], undefined, 'tls')).message).to.match(/^tls\.ca\[1\]: OpenSSL reads 0 certificate\(s\) of 2/);
      expect(refusal(() => checkTrustMaterial(new X509Certificate(ca()).raw, undefined, 'tls')).message).to.match(/reads 0 certificate\(s\) of 0 in it: no PEM certificate in it \(DER/);
      expect(refusal(() => checkTrustMaterial([], undefined, 'tls')).reason).to.equal('ca-unreadable');
      expect(() => checkTrustMaterial(`${ca()}\n${ca('next-ca')}`.replace(/\n/g, '\r\n'), undefined, 'tls')).to.not.throw();
    });

    (HAVE_OPENSSL ? it : it.skip)('refuses a crl without ca, and accepts a current CRL of every CA', () => {
      expect(refusal(() => checkTrustMaterial(undefined, makeCrl('ca', []), 'tls')).reason).to.equal('crl-missing');
      expect(() => checkTrustMaterial([ca(), ca('next-ca')], [makeCrl('ca', []), makeCrl('next-ca', [])], 'tls')).to.not.throw();
      expect(refusal(() => checkTrustMaterial([ca(), ca('next-ca')], [makeCrl('ca', [])], 'tls')).message).to.match(/tls\.crl has no CRL from "CN=.*" of tls\.ca/);
    });
  });
});
