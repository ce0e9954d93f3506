/**
 * Typed views of the two packages this project runs against but that ship no
 * typings: gossipmonger@0.1.10 (the real client) and
 * gossipmonger-tcp-transport@0.1.6 (the transport this one replaces). Only
 * the parts the demo, tests and benchmark use. Both are devDependencies.
 */
import { createServer } from 'node:net';
import GossipmongerModule = require('gossipmonger');
import OldTransportModule = require('gossipmonger-tcp-transport');

/** A gossipmonger@0.1.10 peer, as the package defines it. */
interface GossipmongerPeer extends NodeJS.EventEmitter {
  gossip (): void;
  update (key: string, value: unknown): void;
  storage: {
    get (id: string): { data: Record<string, [unknown, number]> } | undefined;
    livePeers (): unknown[];
    deadPeers (): unknown[];
  };
  /** The digest this peer sends: every live peer it knows, and itself. */
  digest (livePeers?: unknown[]): unknown[];
  /** gossipmonger's timer for the next round (undocumented); the chaos suite's pause clears it. */
  timeout: NodeJS.Timeout | null;
}

/** A gossipmonger peer that can be stopped (the subclass below). */
export interface Monger extends GossipmongerPeer {
  stop (): void;
}

const Base = GossipmongerModule as unknown as new (peerInfo: unknown, options: unknown) => GossipmongerPeer;

/**
 * gossipmonger@0.1.10 has no stop(): every gossip() round schedules the next
 * one. This subclass ends the rounds through the public gossip() method (the
 * pattern the README shows), without touching gossipmonger's timer.
 */
export class Gossipmonger extends Base {
  #stopped = false;
  override gossip (): void {
    if (!this.#stopped) super.gossip();
  }

  stop (): void {
    this.#stopped = true;
  }
}

/** Stops the peers' gossip rounds (each ends within one GOSSIP_INTERVAL). */
export function stopGossip (peers: Monger[]): void {
  for (const peer of peers) peer.stop();
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
