/**
 * The health of this node's own certificate: expired, not yet valid, or
 * expiring within CERT_WARNING_DAYS. A node with such a certificate still
 * starts (a clock off by a minute is not a reason to refuse), but its peers
 * will refuse it, so the operator is told: at construction, at listen(), at
 * every rotation, and when the certificate enters the window or expires while
 * the node runs.
 */
import type { SecureContextOptions } from 'node:tls';
import { CertificateWarning, type WarningCode } from '../errors';
import { parseCertificates } from './trust';

/** Days before expiry from which a node warns about its own certificate. */
export const CERT_WARNING_DAYS = 14;

const DAY = 24 * 60 * 60 * 1000;
/** setTimeout holds at most 2^31-1 ms (about 24.8 days); longer waits re-arm. */
const MAX_TIMER = 0x7fffffff;

interface Own {
  subject: string;
  fingerprint256: string;
  validFrom: number;
  validTo: number;
}

/** The first certificate of a `cert` option; undefined when there is none or it cannot be read (a pfx). */
function ownCertificate (cert: SecureContextOptions['cert']): Own | undefined {
  try {
    const first = parseCertificates(cert)[0];
    if (first === undefined) return undefined;
    return { subject: first.subject.replace(/\n/g, ', '), fingerprint256: first.fingerprint256, validFrom: Date.parse(first.validFrom), validTo: Date.parse(first.validTo) };
  } catch {
    return undefined;
  }
}

/** What is wrong with `own` at `now`, if anything. */
function problem (own: Own, now: number): WarningCode | undefined {
  if (now < own.validFrom) return 'WARN_CERT_NOT_YET_VALID';
  if (now > own.validTo) return 'WARN_CERT_EXPIRED';
  if (own.validTo - now <= CERT_WARNING_DAYS * DAY) return 'WARN_CERT_EXPIRES_SOON';
  return undefined;
}

function messageOf (code: WarningCode, own: Own, now: number): string {
  const when = (ms: number): string => new Date(ms).toISOString();
  switch (code) {
    case 'WARN_CERT_EXPIRED': return `this node's certificate (${own.subject}) expired at ${when(own.validTo)}: peers will refuse it; install a new one (setSecureContext or watchCertificates)`;
    case 'WARN_CERT_NOT_YET_VALID': return `this node's certificate (${own.subject}) is not valid before ${when(own.validFrom)}: peers will refuse it until then (or this machine's clock is wrong)`;
    default: return `this node's certificate (${own.subject}) expires at ${when(own.validTo)}, in ${Math.max(0, Math.ceil((own.validTo - now) / DAY))} day(s): renew it`;
  }
}

/**
 * Checks the certificate given by `current()` when asked, and on a timer at
 * the moments its state changes; warns once per certificate and state.
 */
export class OwnCertificateHealth {
  readonly #current: () => SecureContextOptions['cert'];
  readonly #warn: (warning: CertificateWarning) => void;
  #warned: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor (current: () => SecureContextOptions['cert'], warn: (warning: CertificateWarning) => void) {
    this.#current = current;
    this.#warn = warn;
  }

  /** Checks now; with `arm`, also when the certificate's state next changes (until stop()). */
  check (arm: boolean, now = Date.now()): void {
    const own = ownCertificate(this.#current());
    if (own === undefined) return;
    const code = problem(own, now);
    const key = `${own.fingerprint256}:${code ?? ''}`;
    if (code !== undefined && key !== this.#warned) {
      this.#warn(new CertificateWarning(code, messageOf(code, own, now), { subject: own.subject, fingerprint256: own.fingerprint256, validFrom: own.validFrom, validTo: own.validTo }));
    }
    this.#warned = key;
    if (arm) this.#arm(own, now);
  }

  /** The next moment the state changes: valid from, the window, expiry. */
  #arm (own: Own, now: number): void {
    this.stop();
    const next = [own.validFrom, own.validTo - CERT_WARNING_DAYS * DAY, own.validTo + 1].filter((t) => t > now).sort((a, b) => a - b)[0];
    if (next === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.check(true);
    }, Math.min(next - now, MAX_TIMER));
    this.#timer.unref();
  }

  stop (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
