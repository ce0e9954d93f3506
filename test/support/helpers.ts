/**
 * Shared test plumbing: transports in each mode, raw clients that speak the
 * wire format by hand, and promise helpers that never wait forever.
 */
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect as tlsConnect, createSecureContext, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import TcpTransport = require('../../src/index');
import type { TransportOptions } from '../../src/options';
import { DEFAULT_CERT_DIR, loadPem, type Pem } from '../../scripts/generate-certs';
import { Gossipmonger, stopGossip } from '../../scripts/typed-packages';

export type Mode = 'plain' | 'tls' | 'mtls';
export const MODES: Mode[] = ['plain', 'tls', 'mtls'];

export const HOST = '127.0.0.1';

export function pem (name: string): Pem {
  return loadPem(name, DEFAULT_CERT_DIR);
}

export function ca (name = 'ca'): string {
  return pem(name).cert;
}

/** TLS options for `mode` presenting certificate `peer`; undefined in plain mode. */
export function tlsFor (mode: Mode, peer = 'peer-1', extra: Record<string, unknown> = {}): TransportOptions['tls'] {
  if (mode === 'plain') return undefined;
  const { key, cert } = pem(peer);
  return { key, cert, ca: ca(), ...(mode === 'mtls' ? { requestCert: true } : {}), ...extra };
}

/** A transport in `mode` on 127.0.0.1, port 0, not yet listening. */
export function transport (mode: Mode, options: TransportOptions = {}, peer = 'peer-1'): TcpTransport {
  const tls = options.tls ?? tlsFor(mode, peer);
  return new TcpTransport({ host: HOST, port: 0, ...options, ...(tls ? { tls } : {}) });
}

const open = new Set<TcpTransport>();

/** Creates, listens and remembers a transport so that `closeAll()` closes it. */
export async function listening (mode: Mode, options: TransportOptions = {}, peer = 'peer-1'): Promise<TcpTransport> {
  const t = transport(mode, options, peer);
  open.add(t);
  await new Promise<void>((resolve) => t.listen(resolve));
  return t;
}

/** Remembers a transport that is not listening, for closeAll(). */
export function track<T extends TcpTransport> (t: T): T {
  open.add(t);
  return t;
}

export async function closeAll (): Promise<void> {
  const all = [...open];
  open.clear();
  await Promise.all(all.map((t) => new Promise<void>((resolve) => t.close(resolve))));
}

/** `remotePeer` for gossipmonger-style calls. */
export function peerAt (t: { port: number }, id = 'remote'): { id: string; transport: { host: string; port: number } } {
  return { id, transport: { host: HOST, port: t.port } };
}

export const sender = { id: 'sender', transport: { host: HOST, port: 1 } };

/**
 * How long next(), until() and closed() wait by default before failing. A
 * liveness bound, not a deadline: each returns as soon as what it waits for
 * happens, so the bound only decides how long a hang takes to be reported.
 * On the 2-core machine beside two busy loops and other work, one TLS
 * connection and its first frame took over 3 s.
 */
export const LIVENESS_MS = 10000;

/** Resolves with the next emission of `event`, rejecting after `ms`. */
export async function next<T extends unknown[] = unknown[]> (emitter: NodeJS.EventEmitter, event: string, ms = LIVENESS_MS): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    return await once(emitter, event, { signal: ac.signal }) as T;
  } catch (error) {
    if (ac.signal.aborted) throw new Error(`no '${event}' within ${ms} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Collects every emission of the given events, for asserting what did and did not fire. */
export function record (t: TcpTransport): { errors: Error[]; deltas: unknown[][]; digests: unknown[][] } {
  const seen = { errors: [] as Error[], deltas: [] as unknown[][], digests: [] as unknown[][] };
  t.on('error', (error) => seen.errors.push(error));
  t.on('deltas', (...args) => seen.deltas.push(args));
  t.on('digest', (...args) => seen.digests.push(args));
  return seen;
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` until it holds, or fails after `ms`. */
export async function until (predicate: () => boolean, ms = LIVENESS_MS, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** rawClient's TLS contexts, one per certificate presented. */
const clientContexts = new Map<string, SecureContext>();

/**
 * A raw client speaking to `t` in `mode`, as a hand-written peer would: no
 * transport involved, so tests control every byte. In mTLS mode it presents
 * `peer`'s certificate.
 */
export async function rawClient (mode: Mode, port: number, peer = 'peer-2'): Promise<Socket | TLSSocket> {
  let socket: Socket | TLSSocket;
  if (mode === 'plain') {
    socket = netConnect({ host: HOST, port });
    await next(socket, 'connect');
  } else {
    // One context per certificate, as a real client keeps: building one per
    // connection parses the key and CA again (about 30% of a handshake),
    // which tests opening hundreds of connections pay for nothing.
    const secureContext = clientContexts.get(peer) ?? createSecureContext({ ca: ca(), ...pem(peer) });
    clientContexts.set(peer, secureContext);
    socket = tlsConnect({ host: HOST, port, secureContext });
    await next(socket, 'secureConnect');
  }
  socket.on('error', () => {});
  return socket;
}

/** A bare TCP connection to `port` from `localAddress` (any of 127.0.0.0/8), errors ignored. */
export function tcpFrom (port: number, localAddress = HOST): Socket {
  const socket = netConnect({ host: HOST, port, localAddress });
  socket.on('error', () => {});
  return socket;
}

/** Resolves when the socket is closed (by either side). */
export function closed (socket: Socket, ms = LIVENESS_MS): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket not closed within ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A function running a full garbage collection, so memory figures are what is live. */
export function exposeGc (): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** The `code` of an error, ours or Node's. */
export function codeOf (error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

/**
 * A hand-made TLS client (no transport, so no ALPN and only the certificate
 * given) that sends one digest as soon as its handshake completes, then waits
 * until the server closes it.
 */
export async function tlsClientSends (port: number, options: ConnectionOptions, id: string): Promise<void> {
  const socket = tlsConnect({ host: HOST, port, ...options });
  socket.on('error', () => {});
  socket.on('secureConnect', () => socket.write(JSON.stringify({ digest: [], sender: { id } }) + '\n'));
  await closed(socket);
}

export function digestFrame (id = 'sender', extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ digest: [{ id, maxVersionSeen: 1 }], sender: { id, transport: { host: HOST, port: 1 } }, ...extra });
}

export { TcpTransport };

/**
 * Runs gossipmonger peers p0..pN-1 over `endpoints` (p0 seeds the rest), each
 * holding k<i> = v<i>, until every peer has every other peer's value, then
 * stops them. Fails with `what` when they do not converge within 15 s.
 */
export async function convergeOver (endpoints: ReadonlyArray<{ transport: unknown; port: number | string }>, interval: number, what: string): Promise<void> {
  const peers = endpoints.map(({ transport: t, port }, i) => {
    const peer = new Gossipmonger({ id: `p${i}`, transport: { host: HOST, port } }, {
      transport: t,
      GOSSIP_INTERVAL: interval,
      seeds: i === 0 ? [] : [{ id: 'p0', transport: { host: HOST, port: endpoints[0]!.port } }]
    });
    peer.on('error', () => {});
    peer.update(`k${i}`, `v${i}`);
    return peer;
  });
  for (const peer of peers) peer.gossip();
  const converged = (): boolean => peers.every((peer, i) => endpoints.every((_, j) => i === j || peer.storage.get(`p${j}`)?.data[`k${j}`]?.[0] === `v${j}`));
  try {
    await until(converged, 15000, what);
  } finally {
    stopGossip(peers);
  }
}
