/**
 * The trust attacks, each on loopback with a bounded reproduction, printing
 * what now happens (deliveries, refusals by code, sockets held):
 *
 *   npm run build && node dist/bench/trust-attacks.js
 *
 * 1. impersonation: a member with peer-1's certificate answers at the address
 *    gossip gives for peer-3 ('sender-id' on the sender, then 'any' to compare);
 * 2. reflection: 3,000 digests from new senders whose address is a sink, to a
 *    gossipmonger node (defaults, then outbound.allow);
 * 3. rotation outlived: a dial stalled in its handshake across setSecureContext(),
 *    per message and pooled;
 * 4. revocation: a CRL applied while the revoked peer holds a pooled connection;
 * 5. plaintext deadline: a plaintext connection sending a frame every 100 ms across `until`;
 * 6. remotes that never close: 50 pooled remotes that ignore our FIN.
 */
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { readdirSync } from 'node:fs';
import TcpTransport = require('../src/index');
import { Gossipmonger, stopGossip } from '../scripts/typed-packages';
import { loadPem } from '../scripts/generate-certs';
import { HAVE_OPENSSL, holdingProxy, makeCrl } from '../test/support/trust-fixtures';

const HOST = '127.0.0.1';
const ca = (name = 'ca'): string => loadPem(name).cert;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function codes (errors: Error[]): string {
  const byCode: Record<string, number> = {};
  for (const e of errors) {
    const code = (e as { code?: string }).code ?? 'UNKNOWN';
    byCode[code] = (byCode[code] ?? 0) + 1;
  }
  return JSON.stringify(byCode);
}

async function listen (t: TcpTransport): Promise<TcpTransport> {
  await new Promise<void>((resolve) => t.listen(resolve));
  return t;
}

function watch (t: TcpTransport): { errors: Error[]; delivered: () => number } {
  const errors: Error[] = [];
  let delivered = 0;
  t.on('error', (e) => errors.push(e));
  t.on('digest', () => delivered++);
  t.on('deltas', () => delivered++);
  return { errors, delivered: () => delivered };
}

const mtls = (peer: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...loadPem(peer), ca: ca(), requestCert: true, ...extra });

async function impersonation (): Promise<void> {
  for (const authorize of ['sender-id', 'any'] as const) {
    const impostor = await listen(new TcpTransport({ host: HOST, port: 0, tls: mtls('peer-1') as never }));
    const seen = watch(impostor);
    const victim = new TcpTransport({ host: HOST, port: 0, tls: mtls('peer-2', { authorize }) as never });
    const sent = watch(victim);
    for (let i = 0; i < 13; i++) {
      victim.digest({ id: 'peer-3', transport: { host: HOST, port: impostor.port } }, { id: 'peer-2' }, []);
      await sleep(20);
    }
    await sleep(300);
    console.log(`1. impersonation, victim authorize '${authorize}': 13 digests for peer-3 sent to peer-1's address -> ${seen.delivered()} delivered to the impostor; victim errors ${codes(sent.errors)}`);
    await Promise.all([impostor.close(), victim.close()]);
  }
}

async function reflection (): Promise<void> {
  for (const outbound of [{}, { allow: ['127.0.0.1/32'] }]) {
    let open = 0;
    let peak = 0;
    let total = 0;
    const held = new Set<Socket>();
    const sink = createServer({ allowHalfOpen: true }, (s) => {
      total++;
      held.add(s);
      peak = Math.max(peak, ++open);
      s.on('error', () => {});
      s.resume();
      s.once('close', () => { open--; held.delete(s); });
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.3', resolve));
    const sinkPort = (sink.address() as { port: number }).port;
    const transport = await listen(new TcpTransport({ host: HOST, port: 0, outbound }));
    const seen = watch(transport);
    const node = new Gossipmonger({ id: 'victim', transport: { host: HOST, port: transport.port } }, { transport, GOSSIP_INTERVAL: 60000 });
    node.on('error', () => {});
    node.update('k', 'v');
    const fdsBefore = readdirSync('/proc/self/fd').length;
    let fdPeak = fdsBefore;
    const sampler = setInterval(() => { fdPeak = Math.max(fdPeak, readdirSync('/proc/self/fd').length); }, 5);
    const attacker = netConnect({ host: HOST, port: transport.port, localAddress: '127.0.0.2' });
    attacker.on('error', () => {});
    const frames: string[] = [];
    for (let i = 0; i < 3000; i++) frames.push(JSON.stringify({ digest: [{ id: 'victim', maxVersionSeen: 0 }], sender: { id: `r${i}`, transport: { host: '127.0.0.3', port: sinkPort } } }));
    const started = Date.now();
    attacker.end(frames.join('\r\n') + '\r\n');
    await new Promise((resolve) => attacker.once('close', resolve));
    await sleep(500);
    clearInterval(sampler);
    console.log(`2. reflection, outbound ${JSON.stringify(outbound)}: 3000 digests in ${Date.now() - started} ms -> sink saw ${total} connections (peak ${peak} at once); victim fds ${fdsBefore} -> peak ${fdPeak}; victim errors ${codes(seen.errors)}`);
    stopGossip([node]);
    for (const s of held) s.destroy();
    await transport.close();
    await new Promise((resolve) => sink.close(resolve));
  }
}

async function rotationOutlived (): Promise<void> {
  for (const keepAlive of [false, true]) {
    const receiver = await listen(new TcpTransport({ host: HOST, port: 0, keepAlive: false, tls: mtls('peer-1') as never }));
    const seen = watch(receiver);
    const proxy = await holdingProxy(receiver.port, 'to-client');
    const sender = new TcpTransport({ host: HOST, port: 0, keepAlive, tls: mtls('peer-2') as never });
    const sent = watch(sender);
    for (let i = 0; i < 5; i++) sender.digest({ id: 'peer-1', transport: { host: HOST, port: proxy.port } }, { id: 'peer-2' }, []);
    while (proxy.held() === 0) await sleep(5);
    sender.setSecureContext({ ...loadPem('next-peer-2'), ca: ca('next-ca') });
    proxy.release();
    await sleep(500);
    for (let i = 0; i < 5; i++) sender.digest({ id: 'peer-1', transport: { host: HOST, port: proxy.port } }, { id: 'peer-2' }, []);
    await sleep(500);
    console.log(`3. rotation during a handshake (${keepAlive ? 'keepAlive' : 'per message'}): 10 frames to a server the new CA does not trust -> ${seen.delivered()} delivered; sender errors ${codes(sent.errors)}; resumed ${sender.stats().connections.resumed}`);
    await Promise.all([receiver.close(), sender.close(), proxy.stop()]);
  }
}

async function revocation (): Promise<void> {
  if (!HAVE_OPENSSL) {
    console.log('4. revocation: skipped (needs the openssl command line for the CRL)');
    return;
  }
  const receiver = await listen(new TcpTransport({ host: HOST, port: 0, keepAlive: false, tls: mtls('peer-1') as never }));
  const seen = watch(receiver);
  const revoked = new TcpTransport({ host: HOST, port: 0, keepAlive: true, tls: mtls('peer-2') as never });
  const sent = watch(revoked);
  const to = { id: 'peer-1', transport: { host: HOST, port: receiver.port } };
  revoked.digest(to, { id: 'peer-2' }, []);
  while (seen.delivered() === 0) await sleep(5);
  const crl = makeCrl('ca', ['peer-2']);
  const started = Date.now();
  receiver.setSecureContext({ crl });
  const closedAfter = Date.now() - started;
  for (let i = 0; i < 5; i++) {
    revoked.digest(to, { id: 'peer-2' }, []);
    await sleep(100);
  }
  console.log(`4. revocation: CRL applied while peer-2 holds a pooled connection -> closed within ${closedAfter} ms; 5 later frames -> ${seen.delivered() - 1} delivered; receiver errors ${codes(seen.errors)}; sender errors ${codes(sent.errors)}`);
  await Promise.all([receiver.close(), revoked.close()]);
}

async function plaintextDeadline (): Promise<void> {
  const until = Date.now() + 500;
  const receiver = await listen(new TcpTransport({ host: HOST, port: 0, tls: mtls('peer-1', { plaintext: { accept: true, until } }) as never }));
  let after = 0;
  let before = 0;
  const errors: Error[] = [];
  receiver.on('error', (e) => errors.push(e));
  receiver.on('digest', () => { if (Date.now() >= until) after++; else before++; });
  const socket = netConnect({ host: HOST, port: receiver.port, localAddress: '127.0.0.2' });
  socket.on('error', () => {});
  let closedAt: number | undefined;
  socket.once('close', () => { closedAt = Date.now(); });
  const frame = JSON.stringify({ digest: [], sender: { id: 'forger' } }) + '\r\n';
  for (let i = 0; i < 10 && closedAt === undefined; i++) {
    socket.write(frame);
    await sleep(100);
  }
  console.log(`5. plaintext deadline: one connection, a frame every 100 ms across until -> ${before} delivered before, ${after} after; closed ${closedAt === undefined ? 'never' : `${closedAt - until} ms after until`}; errors ${codes(errors)}`);
  socket.destroy();
  await receiver.close();
}

async function neverClose (): Promise<void> {
  const sockets = new Set<Socket>();
  const servers = await Promise.all(Array.from({ length: 50 }, async () => {
    const server = createServer({ allowHalfOpen: true }, (s) => { sockets.add(s); s.on('error', () => {}); s.resume(); });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    return server;
  }));
  const sender = new TcpTransport({ host: HOST, port: 0, keepAlive: { idleTimeout: 100 }, connectTimeout: 1000 });
  const sent = watch(sender);
  for (const server of servers) sender.digest({ transport: { host: HOST, port: (server.address() as { port: number }).port } }, { id: 'me' }, []);
  await sleep(400);
  const retiring = sender.stats().connections.retiring;
  await sleep(1200);
  console.log(`6. 50 remotes that never close after our end(): retiring ${retiring} after the idle timeout, ${sender.stats().connections.retiring} and ${sender.stats().connections.outboundOpen} sockets open 1.2 s later (connectTimeout 1 s); errors ${codes(sent.errors)}`);
  for (const s of sockets) s.destroy();
  await sender.close();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
}

async function main (): Promise<void> {
  await impersonation();
  await reflection();
  await rotationOutlived();
  await revocation();
  await plaintextDeadline();
  await neverClose();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
