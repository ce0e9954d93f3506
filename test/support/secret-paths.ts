/**
 * Every error path a secret could travel through, fed known marker strings:
 * a private key, a passphrase, and a frame's content. Used by
 * test/integration/secrets.test.ts in its own process (errors, causes,
 * channel messages) and in a child process run with
 * NODE_DEBUG=gossipmonger-tls-transport (its debug lines).
 *
 * `runPaths` returns, per path, what the library produced: thrown errors and
 * emitted 'error' events. The caller searches them, and whatever else it
 * captured, for the markers.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { TcpTransport } from '../../src/transport';
import { loadPem } from '../../scripts/generate-certs';

/** Marker strings: none of them may appear in anything the library outputs. */
export const PASSPHRASE = 'PASSPHRASE-MARKER-5b7e1c';
export const NUMERIC_PASSPHRASE = 8675309123;
export const FRAME_SECRET = 'FRAME-SECRET-MARKER-9d41';
/**
 * A short secret: V8's JSON.parse messages quote about ten characters around
 * the fault (the whole text when it is short), so a long marker would only
 * ever leak in part.
 */
export const SHORT_SECRET = 'zQ7vK2';

const HOST = '127.0.0.1';

/** Lines of a PEM body long enough to be a secret if seen anywhere. */
export function keyMarkers (keyPem: string): string[] {
  return keyPem.split('\n').filter((line) => /^[A-Za-z0-9+/=]{40,}$/.test(line)).map((line) => line.slice(0, 32));
}

export interface Outcome {
  /** Path name -> what the library produced on it. */
  results: Map<string, unknown[]>;
  /** The markers of the private keys used. */
  keys: string[];
}

function catching (fn: () => unknown): unknown[] {
  try {
    fn();
    return [];
  } catch (error) {
    return [error];
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor (predicate: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate() && Date.now() < deadline) await sleep(10);
}

/** Sends raw bytes on a new plain connection and closes it once the server does. */
function sendRaw (port: number, bytes: Buffer | string, end = true): Promise<void> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: HOST, port });
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      socket.write(bytes);
      if (end) socket.end();
    });
    setTimeout(() => socket.destroy(), 2000).unref();
  });
}

/** The frames a hostile or broken peer sends, each carrying FRAME_SECRET. */
export function hostileFrames (): Array<[string, Buffer | string]> {
  const s = FRAME_SECRET;
  const deep = `{"sender":{"id":"x"},"deltas":[["x","k",${'['.repeat(70)}"${s}"${']'.repeat(70)},1]]}`;
  const many = `{"sender":{"id":"x"},"digest":[],"v":{${Array.from({ length: 12300 }, (_, i) => `"${s}${i}":1`).join(',')}}}`;
  return [
    ['frame: not JSON (bare word)', `${s} is not json\n`],
    ['frame: not JSON (a short secret unquoted)', `{"token":${SHORT_SECRET}}\n`],
    ['frame: not JSON (a short secret unquoted in a delta)', `{"sender":{"id":"x"},"deltas":[["x","pw",${SHORT_SECRET},1]]}\n`],
    ['frame: not JSON (unterminated string)', `{"sender":{"id":"x"},"deltas":[["x","k","${s}\n`],
    ['frame: not JSON (bad token after a value)', `{"sender":{"id":"x"},"deltas":[["x","k","${s}" oops]]}\n`],
    ['frame: not JSON (bad escape)', `{"sender":{"id":"x"},"deltas":[["x","k","\\q${s}",1]]}\n`],
    ['frame: not JSON (trailing comma)', `{"sender":{"id":"${s}"},"digest":[],}\n`],
    ['frame: schema (unknown top-level property named by the secret)', `{"sender":{"id":"x"},"digest":[],"${s}":1}\n`],
    ['frame: schema (secret as a key of sender.transport)', `{"sender":{"id":"x","transport":{"host":"h","port":1,"${s}":{"a":1}}},"digest":[]}\n`],
    ['frame: schema (secret where a number belongs)', `{"sender":{"id":"x"},"digest":[{"id":"y","maxVersionSeen":"${s}"}]}\n`],
    ['frame: schema (secret as a property of a digest entry)', `{"sender":{"id":"x"},"digest":[{"id":"y","maxVersionSeen":1,"${s}":1}]}\n`],
    ['frame: schema (secret as a reserved-name key)', `{"sender":{"id":"x"},"deltas":[["x","__proto__","${s}",1]]}\n`],
    ['frame: value nested past the depth limit', deep + '\n'],
    ['frame: past the JSON property budget', many + '\n'],
    ['frame: not UTF-8', Buffer.concat([Buffer.from(`{"sender":{"id":"x"},"deltas":[["x","k","${s}`), Buffer.from([0xff, 0xfe]), Buffer.from('",1]]}\n')])]
  ];
}

/**
 * Runs every path. Errors emitted by transports are collected per path by
 * attaching a listener for its duration; nothing here prints.
 */
export async function runPaths (): Promise<Outcome> {
  const results = new Map<string, unknown[]>();
  const peer1 = loadPem('peer-1');
  const peer2 = loadPem('peer-2');
  const ca = loadPem('ca').cert;
  const encrypted = createPrivateKey(peer1.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: `${PASSPHRASE}-right` }) as string;
  const keys = [...keyMarkers(peer1.key), ...keyMarkers(peer2.key), ...keyMarkers(encrypted)];
  const base = { key: peer1.key, cert: peer1.cert, ca };

  // ------------------------------------------------------------ options (thrown)
  const badContexts: Array<[string, Record<string, unknown>]> = [
    ['tls: a key where a certificate belongs', { ...base, cert: peer1.key }],
    ['tls: a certificate where the key belongs', { ...base, key: peer1.cert }],
    ['tls: a key that does not match the certificate', { ...base, key: peer2.key }],
    ['tls: an encrypted key with a wrong passphrase', { ...base, key: encrypted, passphrase: PASSPHRASE }],
    ['tls: an encrypted key without a passphrase', { ...base, key: encrypted }],
    ['tls: { pem, passphrase } with a wrong passphrase', { ...base, key: [{ pem: encrypted, passphrase: PASSPHRASE }] }],
    ['tls: a passphrase that is not a string', { ...base, passphrase: NUMERIC_PASSPHRASE }],
    ['tls: a key given where the CRL belongs', { ...base, crl: peer2.key }],
    ['tls: a key path (with a secret in it) where the key belongs', { ...base, key: `/etc/${PASSPHRASE}/node.key` }],
    ['tls: the key alone, without a certificate', { key: peer1.key }]
  ];
  results.set('constructor: tls given as the PEM key itself', catching(() => new TcpTransport({ tls: peer1.key as never })));
  results.set('constructor: tls given as a passphrase string', catching(() => new TcpTransport({ tls: PASSPHRASE as never })));
  for (const [name, tls] of badContexts) results.set(`constructor, ${name}`, catching(() => new TcpTransport({ port: 0, tls })));
  const rotating = new TcpTransport({ port: 0, tls: base });
  for (const [name, tls] of badContexts) {
    if (name.endsWith('without a certificate')) continue;
    results.set(`setSecureContext(), ${name}`, catching(() => rotating.setSecureContext(tls)));
  }
  results.set('watchCertificates(): PEM contents where the paths belong', catching(() => rotating.watchCertificates({ key: peer1.key, cert: peer1.cert, ca })));

  // ------------------------------------------------------------ watched files (ERR_CERT_RELOAD events)
  const dir = mkdtempSync(join(tmpdir(), 'gm-secrets-'));
  try {
    const sets: Array<[string, { key: string; cert: string; ca: string; crl?: string }]> = [
      ['watched files: an encrypted key', { key: encrypted, cert: peer1.cert, ca }],
      ['watched files: a key that does not match', { key: peer2.key, cert: peer1.cert, ca }],
      ['watched files: a key where the certificate belongs', { key: peer1.key, cert: peer1.key, ca }],
      ['watched files: a key where the CA belongs', { key: peer1.key, cert: peer1.cert, ca: peer2.key }],
      ['watched files: a key where the CRL belongs', { key: peer1.key, cert: peer1.cert, ca, crl: peer2.key }]
    ];
    for (const [name, set] of sets) {
      const t = new TcpTransport({ port: 0, tls: base });
      const seen: unknown[] = [];
      t.on('error', (error) => seen.push(error));
      for (const [file, text] of Object.entries(set)) writeFileSync(join(dir, `${file}.pem`), text);
      const watch = t.watchCertificates({ key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem'), ca: join(dir, 'ca.pem'), ...(set.crl === undefined ? {} : { crl: join(dir, 'crl.pem') }), debounce: 5, retries: 1, watch: false, interval: 60000 });
      await watch.reload();
      await waitFor(() => seen.length > 0, 2000);
      watch.close();
      results.set(name, seen);
      rmSync(join(dir, 'crl.pem'), { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // ------------------------------------------------------------ inbound frames ('error' events)
  // Every error of every transport below is kept, under the path running
  // when it arrived (late ones land in the next path's list: searched too).
  let current = 'setup';
  const sink = (t: TcpTransport): TcpTransport => {
    t.on('error', (error) => {
      if (!results.has(current)) results.set(current, []);
      results.get(current)!.push(error);
    });
    return t;
  };
  const receiver = sink(new TcpTransport({ host: HOST, port: 0, frameTimeout: 200, idleTimeout: 200, handshakeTimeout: 200 }));
  const small = sink(new TcpTransport({ host: HOST, port: 0, maxFrameSize: 1024 }));
  await Promise.all([receiver, small].map((t) => new Promise<void>((resolve) => t.listen(resolve))));
  const during = async (name: string, _t: TcpTransport, act: () => Promise<void>): Promise<void> => {
    current = name;
    results.set(name, []);
    await act();
    await waitFor(() => results.get(name)!.length > 0, 2000);
  };
  for (const [name, frame] of hostileFrames()) await during(name, receiver, () => sendRaw(receiver.port, frame));
  await during('frame: larger than maxFrameSize', small, () => sendRaw(small.port, `{"sender":{"id":"x"},"deltas":[["x","k","${FRAME_SECRET.repeat(100)}",1]]}\n`));
  await during('frame: not finished within frameTimeout', receiver, () => sendRaw(receiver.port, `{"sender":{"id":"x"},"deltas":[["x","k","${FRAME_SECRET}`, false));

  // Under 'sender-id', a peer speaking for another id, its message full of secrets.
  const guarded = sink(new TcpTransport({ host: HOST, port: 0, tls: { ...base, requestCert: true, authorize: 'sender-id' } }));
  await new Promise<void>((resolve) => guarded.listen(resolve));
  await during('frame: refused by authorize \'sender-id\'', guarded, () => new Promise<void>((resolve) => {
    const socket = tlsConnect({ host: HOST, port: guarded.port, ...peer2, ca, servername: 'localhost' }, () => {
      socket.write(`{"sender":{"id":"peer-3"},"deltas":[["peer-3","k","${FRAME_SECRET}",1]]}\n`);
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    setTimeout(() => socket.destroy(), 2000).unref();
  }));

  // ------------------------------------------------------------ outbound sends ('error' events)
  const sender = sink(new TcpTransport({ host: HOST, port: 0, maxFrameSize: 1024 }));
  const tlsSender = sink(new TcpTransport({ host: HOST, port: 0, tls: { ...loadPem('rogue-peer'), ca } }));
  const to = (port: number, id = 'peer-1'): { id: string; transport: { host: string; port: number } } => ({ id, transport: { host: HOST, port } });
  const circular: Record<string, unknown> = { sender: { id: 'me' } };
  circular[FRAME_SECRET] = circular;
  const closedPort = await new Promise<number>((resolve) => {
    const probe = new TcpTransport({ host: HOST, port: 0 });
    probe.listen(() => {
      const port = probe.port;
      void probe.close().then(() => resolve(port));
    });
  });
  await during('send: a payload that cannot be JSON (a property named by the secret closes a circle)', sender, async () => sender.rpc(to(receiver.port), circular));
  await during('send: a BigInt under a secret key', sender, async () => sender.rpc(to(receiver.port), { [FRAME_SECRET]: 10n }));
  await during('send: a string payload with a newline', sender, async () => sender.rpc(to(receiver.port), `{"x":"${FRAME_SECRET}"}\n{}`));
  await during('send: larger than maxFrameSize', sender, async () => sender.deltas(to(receiver.port), { id: 'me' }, [['me', 'k', FRAME_SECRET.repeat(100), 1]]));
  await during('send: nobody listening (ECONNREFUSED)', sender, async () => sender.deltas(to(closedPort), { id: 'me' }, [['me', 'k', FRAME_SECRET, 1]]));
  await during('send: a mutual-TLS receiver refuses our certificate', tlsSender, async () => tlsSender.deltas(to(guarded.port), { id: 'me' }, [['me', 'k', FRAME_SECRET, 1]]));
  await sender.close();
  await during('send: after close()', sender, async () => sender.deltas(to(receiver.port), { id: 'me' }, [['me', 'k', FRAME_SECRET, 1]]));

  await sleep(50);
  current = 'closing';
  await Promise.all([receiver, small, guarded, tlsSender, rotating].map((t) => t.close()));
  results.delete('closing');
  return { results, keys };
}
