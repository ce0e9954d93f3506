/**
 * A node told about its own certificate: expired, not yet valid, or expiring
 * within CERT_WARNING_DAYS, as a coded warning (the 'warning' event, or
 * process.emitWarning without a listener), at construction, at listen, on
 * rotation, and when the state changes while it runs.
 */
import { expect } from 'chai';
import { makePeer, type Pem } from '../../scripts/generate-certs';
import { CERT_WARNING_DAYS } from '../../src/tls/own-certificate';
import type { CertificateWarning } from '../../src/errors';
import { TcpTransport, ca, closeAll, pem, sleep, track, until } from '../support/helpers';

const DAY = 24 * 60 * 60 * 1000;

/** A certificate of the test CA for peer-1, valid from `from` to `to` (ms from now). */
function ownCert (from: number, to: number): Promise<Pem> {
  return makePeer(pem('ca'), { cn: 'peer-1', dns: ['localhost'], notBefore: new Date(Date.now() + from), notAfter: new Date(Date.now() + to) });
}

/** A transport on `own`, with a 'warning' listener attached after construction, as a user would. */
function withWarnings (own: Pem, extra: Record<string, unknown> = {}): { t: TcpTransport; warnings: CertificateWarning[] } {
  const t = track(new TcpTransport({ host: '127.0.0.1', port: 0, tls: { ...own, ca: ca(), ...extra } }));
  const warnings: CertificateWarning[] = [];
  t.on('warning', (warning) => warnings.push(warning));
  return { t, warnings };
}

describe('own certificate health (coded warnings)', () => {
  afterEach(closeAll);

  it('warns WARN_CERT_EXPIRED at construction for an expired certificate, with its subject and dates', async () => {
    const { warnings } = withWarnings(pem('expired-peer'));
    await until(() => warnings.length === 1, 2000, 'the warning');
    expect(warnings[0]).to.include({ code: 'WARN_CERT_EXPIRED', subject: 'CN=expired-peer', name: 'CertificateWarning' });
    expect(warnings[0]!.validTo).to.be.below(Date.now());
    expect(warnings[0]!.message).to.match(/expired at .*peers will refuse it/);
  });

  it(`warns WARN_CERT_EXPIRES_SOON within ${CERT_WARNING_DAYS} days, WARN_CERT_NOT_YET_VALID before its start, and nothing for a valid certificate`, async () => {
    const soon = withWarnings(await ownCert(-DAY, (CERT_WARNING_DAYS - 1) * DAY));
    const early = withWarnings(await ownCert(DAY, 365 * DAY));
    const fine = withWarnings(await ownCert(-DAY, (CERT_WARNING_DAYS + 1) * DAY));
    await until(() => soon.warnings.length === 1 && early.warnings.length === 1, 2000, 'the warnings');
    expect(soon.warnings[0]).to.include({ code: 'WARN_CERT_EXPIRES_SOON' });
    expect(soon.warnings[0]!.message).to.match(new RegExp(`in ${CERT_WARNING_DAYS - 1} day\\(s\\)`));
    expect(early.warnings[0]).to.include({ code: 'WARN_CERT_NOT_YET_VALID' });
    // listen() checks again: the same certificate and state are not repeated.
    for (const { t } of [soon, early, fine]) await new Promise<void>((resolve) => t.listen(resolve));
    await sleep(20);
    expect(fine.warnings).to.deep.equal([]);
    expect(soon.warnings).to.have.length(1);
  });

  it('warns on rotation to a certificate that is expired, once per certificate and state', async () => {
    const { t, warnings } = withWarnings(await ownCert(-DAY, 365 * DAY));
    await new Promise<void>((resolve) => t.listen(resolve));
    expect(warnings).to.deep.equal([]);
    t.setSecureContext({ ...pem('expired-peer') });
    expect(warnings.map((w) => w.code)).to.deep.equal(['WARN_CERT_EXPIRED']);
    t.setSecureContext({ ca: ca() });
    expect(warnings, 'the same certificate: not repeated').to.have.length(1);
    t.setSecureContext({ ...pem('peer-1') });
    expect(warnings).to.have.length(1);
  });

  it('warns while listening when its certificate expires (a timer at the moment its state changes)', async () => {
    // Valid for two more seconds: "expires soon" at once, "expired" when it does.
    const { t, warnings } = withWarnings(await ownCert(-DAY, 2000));
    await new Promise<void>((resolve) => t.listen(resolve));
    await until(() => warnings.length === 1, 2000, 'the first warning');
    expect(warnings[0]).to.include({ code: 'WARN_CERT_EXPIRES_SOON' });
    await until(() => warnings.length === 2, 6000, 'the warning at expiry');
    expect(warnings[1]).to.include({ code: 'WARN_CERT_EXPIRED' });
  });

  it('without a \'warning\' listener, emits a process warning with the code (printed by Node)', async () => {
    const seen: Error[] = [];
    const onWarning = (warning: Error): void => { seen.push(warning); };
    process.on('warning', onWarning);
    try {
      track(new TcpTransport({ port: 0, tls: { ...pem('expired-peer'), ca: ca() } }));
      await until(() => seen.some((w) => (w as { code?: string }).code === 'WARN_CERT_EXPIRED'), 2000, 'the process warning');
      expect(seen.find((w) => (w as { code?: string }).code === 'WARN_CERT_EXPIRED')!.name).to.equal('CertificateWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
