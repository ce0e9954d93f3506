/**
 * What a TLS handshake's certificate handling costs on this Node, in one
 * process (node dist/bench/cert-readers.js [handshakes]):
 *
 * - the first read of a client certificate by the server, per connection, with
 *   each reader Node offers (interleaved, so load hits them alike):
 *   getPeerCertificate() (abbreviated, what the transport uses),
 *   getPeerX509Certificate(), and getPeerCertificate(true) (the chain);
 * - the session tickets a server issues per full and per resumed TLS 1.3
 *   handshake, by default and with SSL_OP_NO_TICKET (Node 20 has no option
 *   for their number: OpenSSL's SSL_CTX_set_num_tickets is not exposed).
 */
import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';

const CERTS = join(__dirname, '..', '..', 'certs');
const read = (name: string): string => readFileSync(join(CERTS, name), 'utf8');
const server = { key: read('peer-1.key'), cert: read('peer-1.crt'), ca: read('ca.crt') };
const client = { key: read('peer-2.key'), cert: read('peer-2.crt'), ca: read('ca.crt') };

type Reader = 'getPeerCertificate()' | 'getPeerX509Certificate()' | 'getPeerCertificate(true)';
const READERS: Reader[] = ['getPeerCertificate()', 'getPeerX509Certificate()', 'getPeerCertificate(true)'];

function readOnce (socket: TLSSocket, reader: Reader): void {
  if (reader === 'getPeerCertificate()') socket.getPeerCertificate();
  else if (reader === 'getPeerX509Certificate()') socket.getPeerX509Certificate();
  else socket.getPeerCertificate(true);
}

async function readers (count: number): Promise<void> {
  const times: Record<Reader, number[]> = { 'getPeerCertificate()': [], 'getPeerX509Certificate()': [], 'getPeerCertificate(true)': [] };
  let n = 0;
  const srv = createServer({ ...server, requestCert: true }, (socket) => {
    const reader = READERS[n++ % READERS.length]!;
    const t0 = process.hrtime.bigint();
    readOnce(socket, reader);
    times[reader].push(Number(process.hrtime.bigint() - t0) / 1000);
    socket.end();
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ...client });
      socket.on('data', () => {});
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
  }
  srv.close();
  console.log(`first read of the client certificate per connection, median of ${Math.floor(count / READERS.length)} (the first tenth dropped):`);
  for (const reader of READERS) {
    const sorted = times[reader].slice(Math.ceil(times[reader].length / 10)).sort((a, b) => a - b);
    console.log(`  ${reader.padEnd(26)} ${sorted[sorted.length >> 1]!.toFixed(1)} us`);
  }
}

async function tickets (label: string, secureOptions: number | undefined): Promise<void> {
  const srv = createServer({ ...server, requestCert: true, ...(secureOptions === undefined ? {} : { secureOptions }) }, (socket) => {
    socket.on('data', () => {});
    // Long enough for the tickets to follow the handshake.
    setTimeout(() => socket.end(), 30);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  let session: Buffer | undefined;
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ...client, ...(session ? { session } : {}) });
      let count = 0;
      let resumed = false;
      socket.on('session', (ticket: Buffer) => { count++; session = ticket; });
      socket.once('secureConnect', () => { resumed = socket.isSessionReused(); });
      socket.on('data', () => {});
      socket.on('error', () => {});
      socket.on('close', () => { seen.push(`${resumed ? 'resumed' : 'full'}: ${count}`); resolve(); });
    });
  }
  srv.close();
  console.log(`  ${label.padEnd(26)} ${seen.join(', ')}`);
}

async function main (): Promise<void> {
  const count = Number(process.argv[2] ?? 600);
  console.log(`Node ${process.version}, OpenSSL ${process.versions.openssl}`);
  await readers(count);
  console.log('session tickets per TLS 1.3 handshake (three connections, each offering the last ticket):');
  await tickets('default', undefined);
  await tickets('SSL_OP_NO_TICKET', constants.SSL_OP_NO_TICKET);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
