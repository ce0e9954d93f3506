/**
 * Fixtures for revocation and rotation tests: CRLs made by the openssl
 * command line (an independent producer for the parser in src/tls/trust.ts), and
 * a TCP proxy that can hold one direction of a connection to stall a handshake.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CERT_DIR } from '../../scripts/generate-certs';
import { HOST, pem } from './helpers';

/** True when the openssl command line is installed (CRL tests need it). */
export const HAVE_OPENSSL = ((): boolean => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** openssl's YYYYMMDDHHMMSSZ for now + `days`. */
function stamp (days: number): string {
  return new Date(Date.now() + days * 86400_000).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * A PEM CRL signed by certs/`caName` that revokes the certificates `revoked`
 * (names in certs/); valid for 30 days from now, or over `days` (lastUpdate
 * and nextUpdate in days from now: [-60, -30] is a stale one).
 */
export function makeCrl (caName: string, revoked: string[], days?: [number, number]): string {
  const dir = mkdtempSync(join(tmpdir(), 'gm-crl-'));
  try {
    const lines = revoked.map((name) => {
      const cert = new X509Certificate(pem(name).cert);
      return ['R', '301231235959Z', '250101000000Z', cert.serialNumber, 'unknown', `/CN=${name}`].join('\t');
    });
    writeFileSync(join(dir, 'index.txt'), lines.length === 0 ? '' : lines.join('\n') + '\n');
    writeFileSync(join(dir, 'crlnumber'), '01\n');
    writeFileSync(join(dir, 'ca.cnf'), [
      '[ ca ]', 'default_ca = d', '[ d ]',
      `database = ${join(dir, 'index.txt')}`, `crlnumber = ${join(dir, 'crlnumber')}`,
      'default_md = sha256', 'default_crl_days = 30', ''
    ].join('\n'));
    execFileSync('openssl', ['ca', '-gencrl', '-batch', '-config', join(dir, 'ca.cnf'),
      '-keyfile', join(DEFAULT_CERT_DIR, `${caName}.key`), '-cert', join(DEFAULT_CERT_DIR, `${caName}.crt`),
      '-out', join(dir, 'crl.pem'), ...(days === undefined ? [] : ['-crl_lastupdate', stamp(days[0]), '-crl_nextupdate', stamp(days[1])])], { stdio: 'ignore' });
    return readFileSync(join(dir, 'crl.pem'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface HoldingProxy {
  port: number;
  /** Connections that reached the proxy. */
  connections: () => number;
  /** Bytes held back so far (both directions). */
  held: () => number;
  /** Stops holding and forwards what was held. */
  release: () => void;
  stop: () => Promise<void>;
}

/**
 * A proxy to `127.0.0.1:targetPort` that holds, while holding is on, either
 * every byte from the server ('to-client': the client's handshake stalls
 * before it sees the server's certificate) or every byte from the client after
 * its first chunk ('to-server': the server has sent its flight and waits for
 * the client's certificate).
 */
export async function holdingProxy (targetPort: number, direction: 'to-client' | 'to-server'): Promise<HoldingProxy> {
  let holding = true;
  let held = 0;
  let count = 0;
  const queues: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const relay = (from: Socket, to: Socket, hold: (chunk: Buffer) => boolean): void => {
    from.on('data', (chunk: Buffer) => {
      if (holding && hold(chunk)) {
        held += chunk.length;
        queues.push(() => { if (!to.destroyed) to.write(chunk); });
      } else {
        to.write(chunk);
      }
    });
    from.on('end', () => {
      if (holding) queues.push(() => to.end());
      else to.end();
    });
  };
  const server: Server = createServer((client) => {
    count++;
    const upstream = connect({ host: HOST, port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    let first = true;
    relay(client, upstream, () => {
      if (direction !== 'to-server') return false;
      if (first) {
        first = false;
        return false;
      }
      return true;
    });
    relay(upstream, client, () => direction === 'to-client');
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => count,
    held: () => held,
    release: () => {
      holding = false;
      for (const flush of queues.splice(0)) flush();
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  };
}

let serialNumber = Date.now() % 1e9;

/** A key and certificate made by the openssl command line, in PEM and as files. */
export interface Issued {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

/**
 * A P-256 certificate for `subject` (e.g. '/CN=x') made by the openssl command
 * line in `dir`, signed by `issuer` (self-signed without one), with subject
 * and authority key identifiers, made by an independent producer (not scripts/pki.ts):
 * with them, two CAs of one name are told apart by their keys.
 */
export function issueWithKeyIds (dir: string, name: string, subject: string, issuer: Issued | undefined, options: { ca?: boolean; san?: string } = {}): Issued {
  const file = (ext: string): string => join(dir, `${name}.${ext}`);
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file('key')], { stdio: 'ignore' });
  writeFileSync(file('ext'), [
    options.ca ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=CA:FALSE',
    options.ca ? 'keyUsage=critical,keyCertSign,cRLSign' : 'keyUsage=critical,digitalSignature',
    ...(options.ca ? [] : ['extendedKeyUsage=serverAuth,clientAuth']),
    'subjectKeyIdentifier=hash',
    ...(issuer ? ['authorityKeyIdentifier=keyid'] : []),
    ...(options.san ? [`subjectAltName=${options.san}`] : [])
  ].join('\n') + '\n');
  execFileSync('openssl', ['req', '-new', '-key', file('key'), '-subj', subject, '-out', file('csr')], { stdio: 'ignore' });
  const signer = issuer ? ['-CA', issuer.certFile, '-CAkey', issuer.keyFile] : ['-signkey', file('key')];
  execFileSync('openssl', ['x509', '-req', '-in', file('csr'), ...signer, '-set_serial', String(++serialNumber), '-days', '30', '-sha256', '-extfile', file('ext'), '-out', file('crt')], { stdio: 'ignore' });
  return { cert: readFileSync(file('crt'), 'utf8'), key: readFileSync(file('key'), 'utf8'), certFile: file('crt'), keyFile: file('key') };
}
