/**
 * Following certificate files: `transport.watchCertificates({ key, cert, ca, crl })`.
 *
 * Tools such as cert-manager, Vault agent or certbot replace these files on
 * disk, often one at a time and not atomically. So:
 *
 * - change events (fs.watch) are debounced, so a key and a certificate
 *   written a few ms apart are read together; a poll of size and mtime
 *   catches what fs.watch misses (files replaced by rename, network mounts);
 * - a file that cannot be read or parsed (half-written, or missing for the
 *   instant of a rename) is read again a few times before giving up;
 * - the new set is validated before anything is swapped: the key matches the
 *   certificate, the certificate chains to the new CA (and is not revoked by
 *   the new CRL), it is valid now, and under 'sender-id' it still names this
 *   node's id. On failure the transport keeps its current material and,
 *   if the set is still the same after `retries` more reads (files replaced
 *   one by one are inconsistent between two renames), ERR_CERT_RELOAD is
 *   reported, once per distinct bad set.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import { certificateIdentities } from './identity';
import { CertReloadError, TrustMaterialError } from '../errors';
import { checkTrustMaterial } from './material';
import { splitCrls, type CertificateFiles, type CertificateWatch } from '../options';
import { loadCrypto, parseCertificates, trustStore, verifyChain } from './trust';

type FsPromises = typeof import('node:fs/promises');
let fsPromises: FsPromises | undefined;
/** Loaded by the first watch, not by require(): most transports never watch files. */
function loadFsPromises (): FsPromises {
  fsPromises ??= require('node:fs/promises') as FsPromises;
  return fsPromises;
}


export interface WatcherContext {
  /** Swaps the material in (setSecureContext). */
  apply (material: SecureContextOptions): void;
  report (error: Error): void;
  /** The id the new certificate must name, or undefined when no policy needs one. */
  expectedId (): string | undefined;
}


/** A problem with the files as read, possibly from a write still in progress. */
class Unreadable extends Error {
  constructor (message: string, readonly reason = 'parse') {
    super(message);
  }
}

/** Validates a set read from disk; returns the reason and a message on failure. */
export function validateSet (key: string, cert: string, ca: string, crl: string | undefined, expectedId: string | undefined, now = Date.now()): [string, string] | undefined {
  let privateKey: KeyObject;
  let chain: X509Certificate[];
  try {
    privateKey = loadCrypto().createPrivateKey(key);
    chain = parseCertificates(cert);
    if (chain.length === 0) throw new Error('no certificate in the cert file');
  } catch (error) {
    throw new Unreadable((error as Error).message);
  }
  const leaf = chain[0]!;
  // A CRL file of several CRLs is handed to Node one CRL an item (splitCrls), so it is checked so.
  const crls = splitCrls(crl) as string | string[] | undefined;
  if (!leaf.checkPrivateKey(privateKey)) return ['key-mismatch', 'the key does not belong to the certificate'];
  // The same check as the constructor's and setSecureContext()'s (src/tls/material.ts).
  try {
    checkTrustMaterial(ca, crls, 'files', now);
  } catch (error) {
    if (!(error instanceof TrustMaterialError)) throw error;
    // A bundle that does not parse may be one still being written: read again before reporting it.
    if (error.reason.endsWith('-unreadable')) throw new Unreadable(error.message, error.reason);
    return [error.reason, error.message];
  }
  const store = trustStore(ca, crls, []);
  const problem = verifyChain(chain, store, now);
  if (problem === 'CERT_HAS_EXPIRED') return ['expired', `certificate or CA expired (${leaf.validTo})`];
  if (problem === 'CERT_NOT_YET_VALID') return ['not-yet-valid', `certificate not valid before ${leaf.validFrom}`];
  if (problem === 'CERT_REVOKED') return ['revoked', 'the new CRL revokes the new certificate'];
  if (problem !== undefined) return ['chain', `certificate does not chain to the new CA (${problem})`];
  if (expectedId !== undefined && !certificateIdentities(leaf.toLegacyObject()).includes(expectedId)) {
    return ['identity', `certificate does not name this node's id ${JSON.stringify(expectedId)}`];
  }
  return undefined;
}

export function watchCertificates (files: CertificateFiles, ctx: WatcherContext): CertificateWatch {
  const debounce = files.debounce ?? 200;
  const retries = files.retries ?? 5;
  const paths = [files.key, files.cert, files.ca, ...(files.crl === undefined ? [] : [files.crl])];
  const fields = ['key', 'cert', 'ca', 'crl'];
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let appliedDigest: string | undefined;
  let reported: string | undefined;
  /** The last missing or unreadable state reported, until the files read again. */
  let unreadable: string | undefined;
  let attempts = 0;
  /** The bad set being read again before it is reported, and how many times it was read. */
  let doubtful: string | undefined;
  let doubtfulReads = 0;
  let signature = '';
  let applied = 0;

  const schedule = (delay = debounce): void => {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void load();
    }, delay);
    timer.unref();
  };

  const load = async (): Promise<boolean> => {
    let contents: string[];
    try {
      contents = await Promise.all(paths.map((path) => loadFsPromises().readFile(path, 'utf8')));
    } catch {
      // Our own words, naming the file: a path may not exist for the instant of a rename.
      const missing = await missingPaths();
      return missing.length > 0 ? retry('missing', `${missing.join(', ')} not found`) : retry('read', `${paths.map((path, i) => `files.${fields[i]!} (${path})`).join(', ')}: not all readable`);
    }
    if (closed) return false;
    unreadable = undefined;
    const digest = loadCrypto().createHash('sha256').update(contents.join('\0')).digest('hex');
    if (digest === appliedDigest) return false;
    const [key, cert, ca, crl] = contents as [string, string, string, string | undefined];
    let failure: [string, string] | undefined;
    try {
      failure = validateSet(key, cert, ca, crl, files.id ?? ctx.expectedId());
    } catch (error) {
      if (error instanceof Unreadable) return retry(error.reason, error.message);
      failure = ['parse', (error as Error).message];
    }
    attempts = 0;
    if (failure !== undefined) {
      // Files replaced one at a time are inconsistent between two renames (a
      // key before its certificate, a CRL before its CA), for longer than the
      // debounce on a loaded machine: a bad set is read again, as a
      // half-written file is, and reported only if it stays. It is never applied.
      if (doubtful !== digest) {
        doubtful = digest;
        doubtfulReads = 0;
      }
      if (++doubtfulReads <= retries && reported !== digest) {
        schedule(debounce);
        return false;
      }
      // One report per distinct bad set: a poll must not repeat it every interval.
      if (reported !== digest) ctx.report(new CertReloadError(failure[0], failure[1]));
      reported = digest;
      return false;
    }
    try {
      ctx.apply({ key, cert, ca, ...(crl === undefined ? {} : { crl }) });
    } catch (error) {
      // Merged with material the files do not set (a crl given to the
      // constructor), the set may still be refused (a TrustMaterialError
      // says why); and what the checks above do not cover but OpenSSL refuses
      // (a CRL file holding no CRL, say) is reported like any bad set, never
      // thrown from a timer (an unhandled rejection would end the process).
      const failure = error instanceof TrustMaterialError
        ? new CertReloadError(error.reason, error.message)
        : new CertReloadError('parse', `the new set was refused when applied: ${(error as Error).message}`);
      if (reported !== digest) ctx.report(failure);
      reported = digest;
      return false;
    }
    applied++;
    appliedDigest = digest;
    reported = undefined;
    return true;
  };

  /** A half-written or briefly missing file: read again shortly, a few times. */
  const retry = (reason: string, message: string): boolean => {
    if (++attempts <= retries) {
      schedule(debounce);
      return false;
    }
    attempts = 0;
    // Once per distinct problem, as for a bad set: a poll must not repeat it.
    const key = `${reason}:${message}`;
    if (unreadable !== key) ctx.report(new CertReloadError(reason, message));
    unreadable = key;
    return false;
  };

  /** The watched files that do not exist, as `files.NAME (path)`. */
  const missingPaths = async (): Promise<string[]> => {
    const found = await Promise.all(paths.map((path) => loadFsPromises().stat(path).then(() => true, (error: NodeJS.ErrnoException) => error.code !== 'ENOENT' && error.code !== 'ENOTDIR')));
    return paths.flatMap((path, i) => found[i] ? [] : [`files.${fields[i]!} (${path})`]);
  };

  const poll = async (): Promise<void> => {
    try {
      const stats = await Promise.all(paths.map((path) => loadFsPromises().stat(path)));
      const now = stats.map((s) => `${s.size}:${s.mtimeMs}:${s.ino}`).join('|');
      if (signature !== '' && now !== signature) schedule();
      signature = now;
      // A file that was missing when it was first watched: watch it now.
      if (files.watch !== false && watchers.size < paths.length) for (const path of paths) if (!watchers.has(path)) follow(path);
    } catch {
      // Missing: maybe for the instant of a rename. A load reads again a few
      // times before it reports the file missing; only a change of state
      // (present -> missing, or a first poll) starts one.
      if (signature !== '-') schedule(signature === '' ? 0 : debounce);
      signature = '-';
    }
  };

  /**
   * Watches `path`. A file replaced by rename (`mv new file`, how files should
   * be replaced) is a new inode, and the watcher of the old one goes quiet: a
   * 'rename' event watches the path again, so the next replacement is seen
   * at once too, not at the next poll.
   */
  const follow = (path: string): void => {
    watchers.get(path)?.close();
    watchers.delete(path);
    if (closed) return;
    try {
      const watcher = watch(path, { persistent: false }, (event) => {
        schedule();
        if (event === 'rename') setImmediate(() => follow(path));
      });
      watcher.on('error', () => {});
      watchers.set(path, watcher);
    } catch {
      // Missing for now, or not watchable (some network file systems): the poll covers it.
    }
  };
  if (files.watch !== false) {
    for (const path of paths) follow(path);
  }
  void poll();
  const poller = setInterval(() => { void poll(); }, files.interval ?? 5000);
  poller.unref();

  return {
    reload: () => load(),
    get applied () { return applied; },
    close: () => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      clearInterval(poller);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    }
  };
}
