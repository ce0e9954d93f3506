import { expect } from 'chai';
import type { PeerCertificate } from 'node:tls';
import { certificateIdentities, isAuthorized, sanUris } from '../../src/tls/identity';

function cert (cn: string | string[] | undefined, san?: string): PeerCertificate {
  return { subject: cn === undefined ? {} : { CN: cn }, subjectaltname: san } as unknown as PeerCertificate;
}

describe('authorize', () => {
  describe('sanUris', () => {
    it('reads plain and JSON-quoted URI entries and ignores DNS and IP names', () => {
      const san = 'DNS:localhost, IP Address:127.0.0.1, URI:spiffe://c/peer-1, URI:"urn:a,b"';
      expect(sanUris(cert('x', san))).to.deep.equal(['spiffe://c/peer-1', 'urn:a,b']);
    });

    it('returns nothing for a certificate without SAN or with a broken quoted entry', () => {
      expect(sanUris(cert('x'))).to.deep.equal([]);
      expect(sanUris(cert('x', 'URI:"unterminated\\'))).to.deep.equal([]);
    });
  });

  describe('isAuthorized', () => {
    const sender = { id: 'peer-1' };

    it("'any' accepts every sender", () => {
      expect(isAuthorized('any', { id: 'whoever' }, undefined)).to.equal(true);
    });

    it("'sender-id' accepts the subject CN or a SAN URI, and nothing else", () => {
      expect(isAuthorized('sender-id', sender, cert('peer-1'))).to.equal(true);
      expect(isAuthorized('sender-id', { id: 'spiffe://c/p' }, cert('other', 'URI:spiffe://c/p'))).to.equal(true);
      expect(isAuthorized('sender-id', sender, cert('peer-2', 'DNS:peer-1'))).to.equal(false);
      expect(isAuthorized('sender-id', sender, undefined)).to.equal(false);
      expect(isAuthorized('sender-id', { id: 'b' }, cert(['a', 'b']))).to.equal(true);
      expect(certificateIdentities(cert(undefined))).to.deep.equal([]);
    });

    it('asks a function policy, and fails closed when it throws or returns a non-boolean', () => {
      expect(isAuthorized((s) => s.id === 'peer-1', sender, undefined)).to.equal(true);
      expect(isAuthorized(() => { throw new Error('bug'); }, sender, undefined)).to.equal(false);
      expect(isAuthorized((() => 'yes') as unknown as () => boolean, sender, undefined)).to.equal(false);
    });
  });
});
