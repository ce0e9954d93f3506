/**
 * Typed views of the two packages this project runs against but that ship no
 * typings: gossipmonger@0.1.10 (the real client) and
 * gossipmonger-tcp-transport@0.1.6 (the transport this one replaces). Only
 * the parts the demo, tests and benchmark use. Both are devDependencies.
 */
import { createServer } from 'node:net';
import GossipmongerModule = require('gossipmonger');
import OldTransportModule = require('gossipmonger-tcp-transport');

/** A gossipmonger@0.1.10 peer. */
export interface Monger extends NodeJS.EventEmitter {
  gossip (): void;
  update (key: string, value: unknown): void;
  storage: {
    get (id: string): { data: Record<string, [unknown, number]> } | undefined;
    livePeers (): unknown[];
    deadPeers (): unknown[];
  };
  /** The digest this peer sends: every live peer it knows, and itself. */
  digest (livePeers?: unknown[]): unknown[];
  timeout: NodeJS.Timeout | null;
}

export const Gossipmonger = GossipmongerModule as unknown as new (peerInfo: unknown, options: unknown) => Monger;

/** Stops a peer's gossip timer (gossipmonger has no stop method). */
export function stopGossip (peers: Monger[]): void {
  for (const peer of peers) if (peer.timeout) clearTimeout(peer.timeout);
}

/** A gossipmonger-tcp-transport@0.1.6 instance. */
export interface OldTransport extends NodeJS.EventEmitter {
  listen (callback?: () => void): void;
  close (callback?: () => void): void;
  deltas (remote: unknown, local: unknown, deltas: unknown): void;
  digest (remote: unknown, local: unknown, digest: unknown): void;
  rpc (remote: unknown, payload: unknown): void;
  server: { address (): { port: number } } | null;
}

export const OldTcpTransport = OldTransportModule as unknown as new (options: { host: string; port: number }) => OldTransport;

/** A port free right now on `host`: 0.1.6 turns port 0 into 9742, so it must be given one. */
export function freePort (host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
