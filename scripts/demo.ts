/**
 * npm start: a real gossipmonger@0.1.10 cluster on loopback over this
 * transport, mutual TLS by default, until every peer has every other peer's key.
 */
import TcpTransport = require('../src/index');
import { generateCerts, loadPem } from './generate-certs';
import { Gossipmonger, stopGossip } from './typed-packages';

type Mode = 'plain' | 'tls' | 'mtls';

interface DemoOptions {
  peers: number;
  mode: Mode;
  /** undefined: the transport's default (pooled with TLS, per message in plain mode). */
  keepAlive: boolean | undefined;
  interval: number;
  /** Give up (exit 1) after this many ms. */
  timeout: number;
}

const USAGE = `Usage: npm start -- [--peers N] [--mode plain|tls|mtls] [--keep-alive | --per-message] [--interval MS] [--timeout MS]

Runs a gossipmonger@0.1.10 cluster of N peers (default 5) on 127.0.0.1 over
gossipmonger-tls-transport, in mutual TLS by default (each peer's sender id is
bound to its certificate with tls.authorize 'sender-id'), until every peer has
replicated every other peer's key. Connections are the transport's default:
one per peer with TLS (keepAlive), one per message in plain mode; --keep-alive
or --per-message choose. Certificates are generated into certs/ first if they
are missing. Exits 0 once converged, 1 if not within --timeout
(default: 20 s plus 2 s per peer).
`;

export function parseDemoArgs (argv: string[]): DemoOptions {
  const options: DemoOptions = { peers: 5, mode: 'mtls', keepAlive: undefined, interval: 200, timeout: NaN };
  const number = (flag: string, value: string | undefined, min: number, max: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} needs a whole number from ${min} to ${max}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--peers') options.peers = number('--peers', argv[++i], 2, 200);
    else if (arg === '--mode') {
      const mode = argv[++i];
      if (mode !== 'plain' && mode !== 'tls' && mode !== 'mtls') throw new Error('--mode must be plain, tls or mtls');
      options.mode = mode;
    } else if (arg === '--keep-alive') options.keepAlive = true;
    else if (arg === '--per-message') options.keepAlive = false;
    else if (arg === '--interval') options.interval = number('--interval', argv[++i], 10, 60000);
    else if (arg === '--timeout') options.timeout = number('--timeout', argv[++i], 100, 3600000);
    else if (arg === '--help' || arg === '-h') throw Object.assign(new Error(USAGE), { help: true });
    else throw new Error(`unknown argument ${arg}\n\n${USAGE}`);
  }
  if (Number.isNaN(options.timeout)) options.timeout = 20000 + 2000 * options.peers;
  return options;
}

export async function runDemo (options: DemoOptions, out: NodeJS.WritableStream = process.stdout): Promise<boolean> {
  const { peers: n, mode } = options;
  const started = Date.now();
  if (mode !== 'plain') {
    const { generated } = await generateCerts({ peers: n });
    if (generated) out.write(`certs: generated a CA and ${n} peer certificates in certs/\n`);
  }
  const ca = mode === 'plain' ? '' : loadPem('ca').cert;

  const transports: TcpTransport[] = [];
  const errors: Error[] = [];
  for (let i = 0; i < n; i++) {
    const name = `peer-${i + 1}`;
    const tls = mode === 'plain'
      ? undefined
      : { ...loadPem(name), ca, ...(mode === 'mtls' ? { requestCert: true, authorize: 'sender-id' as const } : {}) };
    const t = new TcpTransport({ host: '127.0.0.1', port: 0, ...(options.keepAlive === undefined ? {} : { keepAlive: options.keepAlive }), ...(tls ? { tls } : {}) });
    // Every network failure is an 'error'; a demo logs none but counts them.
    t.on('error', (error) => errors.push(error));
    await new Promise<void>((resolve) => t.listen(resolve));
    transports.push(t);
  }

  const peers = transports.map((t, i) => {
    const seed = { id: 'peer-1', transport: { host: '127.0.0.1', port: transports[0]!.port } };
    const peer = new Gossipmonger({ id: `peer-${i + 1}`, transport: { host: '127.0.0.1', port: t.port } }, {
      transport: t,
      GOSSIP_INTERVAL: options.interval,
      seeds: i === 0 ? [] : [seed]
    });
    peer.on('error', () => {});
    peer.update(`key-${i + 1}`, `value of peer-${i + 1}`);
    return peer;
  });

  const want = n * (n - 1);
  const replicated = (): number => {
    let seen = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i !== j && peers[i]!.storage.get(`peer-${j + 1}`)?.data[`key-${j + 1}`]?.[0] === `value of peer-${j + 1}`) seen++;
      }
    }
    return seen;
  };

  const pooled = options.keepAlive ?? mode !== 'plain';
  out.write(`demo: ${n} gossipmonger peers on 127.0.0.1, ${mode === 'mtls' ? 'mutual TLS' : mode === 'tls' ? 'TLS' : 'plain TCP'}${pooled ? ', keepAlive' : ', one connection per message'}, gossip every ${options.interval} ms\n`);
  const gossipStart = Date.now();
  for (const peer of peers) peer.gossip();
  const live = (out as NodeJS.WriteStream).isTTY === true;
  let last = -1;
  const ok = await new Promise<boolean>((resolve) => {
    const tick = setInterval(() => {
      const done = replicated();
      if (done !== last || live) {
        const line = `replicated ${done}/${want} key views (${Math.round((100 * done) / want)}%) after ${((Date.now() - gossipStart) / 1000).toFixed(1)} s`;
        out.write(live ? `\r\x1b[2K${line}` : `${line}\n`);
        last = done;
      }
      if (done === want) { clearInterval(tick); resolve(true); } else if (Date.now() - gossipStart > options.timeout) { clearInterval(tick); resolve(false); }
    }, 100);
  });
  if (live) out.write('\n');
  stopGossip(peers);

  const totals = transports.map((t) => t.stats());
  const framesOut = totals.reduce((sum, s) => sum + s.frames.out, 0);
  const bytesOut = totals.reduce((sum, s) => sum + s.bytes.out, 0);
  const errorCounts: Record<string, number> = {};
  for (const s of totals) for (const [code, count] of Object.entries(s.errors)) errorCounts[code] = (errorCounts[code] ?? 0) + count;
  await Promise.all(transports.map((t) => new Promise<void>((resolve) => t.close(resolve))));

  const errorText = Object.keys(errorCounts).length === 0 ? 'none' : Object.entries(errorCounts).map(([c, k]) => `${c} x${k}`).join(', ');
  const elapsed = ((Date.now() - gossipStart) / 1000).toFixed(2);
  out.write(ok
    ? `converged: ${n} peers, ${mode}${pooled ? ' keepAlive' : ''}, ${elapsed} s to converge, ${framesOut} messages and ${bytesOut} bytes sent, errors: ${errorText} (total ${((Date.now() - started) / 1000).toFixed(2)} s)\n`
    : `NOT converged: ${last}/${want} key views after ${elapsed} s (limit ${options.timeout} ms); ${framesOut} messages sent, errors: ${errorText}\n`);
  return ok;
}

if (require.main === module) {
  let options: DemoOptions;
  try {
    options = parseDemoArgs(process.argv.slice(2));
  } catch (error) {
    const help = (error as { help?: boolean }).help === true;
    (help ? process.stdout : process.stderr).write(`${(error as Error).message}\n`);
    process.exit(help ? 0 : 2);
  }
  runDemo(options).then((ok) => { process.exitCode = ok ? 0 : 1; }, (error: unknown) => {
    process.stderr.write(`demo failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
