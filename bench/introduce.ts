/**
 * Proven membership (on by default: docs/reference.md, "Proven membership")
 * holds back a digest entry naming an id the receiver has no proof of, and
 * probes it: that is the cost of made-up peers, not of gossip. In a cluster
 * each peer a digest names has been in touch before long, so the benchmark's
 * senders (worker.ts, interleaved.ts) have each one do so once, before
 * anything is measured.
 */
import TcpTransport = require('../src/index');

const HOST = '127.0.0.1';

/**
 * One message from each peer `digest` names, as that peer, each on a
 * connection of its own (the proof of an id without identity binding).
 * Resolves once every one was delivered or failed (close waits for each
 * connection).
 */
export async function introducePeers (port: number, digest: unknown[], tls: Record<string, unknown> | undefined): Promise<void> {
  const t = new TcpTransport({ host: HOST, port: 0, keepAlive: false, ...(tls ? { tls } : {}) });
  t.on('error', () => {});
  const remote = { id: 'receiver', transport: { host: HOST, port } };
  for (const entry of digest as Array<{ id: string; transport: unknown }>) t.digest(remote, { id: entry.id, transport: entry.transport }, []);
  await t.close();
}
