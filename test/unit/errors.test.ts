import { expect } from 'chai';
import * as errors from '../../src/errors';

describe('errors', () => {
  const classes = Object.values(errors).filter((value): value is typeof errors.TransportError =>
    typeof value === 'function' && value.prototype instanceof errors.TransportError);

  it('has one subclass per code, each an instance of TransportError with that code', () => {
    const codes = new Set<string>();
    for (const Class of classes) {
      // Every constructor's first argument has a safe default shape for this check.
      const error = new (Class as unknown as new (...args: unknown[]) => errors.TransportError)(1, 'x');
      expect(error).to.be.instanceOf(errors.TransportError).and.instanceOf(Error);
      expect(errors.ERROR_CODES).to.have.property(error.code);
      expect(error.name).to.equal(Class.name);
      codes.add(error.code);
    }
    expect([...codes].sort()).to.deep.equal(Object.keys(errors.ERROR_CODES).sort());
  });

  it('keeps the original error on .cause and the remote address', () => {
    const cause = new Error('boom');
    const error = new errors.TlsHandshakeError('CERT_HAS_EXPIRED', { remoteAddress: '127.0.0.1', remotePort: 5, cause });
    expect(error.cause).to.equal(cause);
    expect(error.remoteAddress).to.equal('127.0.0.1');
    expect(error.remotePort).to.equal(5);
    expect(error.reason).to.equal('CERT_HAS_EXPIRED');
  });

  it('gives MalformedPeerError the exact message of 0.1.6', () => {
    expect(new errors.MalformedPeerError().message).to.equal('malformed remotePeer');
  });
});
