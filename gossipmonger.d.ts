// Typings for gossipmonger@0.1.10, which ships none, as used with this
// transport. Opt in from a TypeScript project with one line (in any .ts file,
// or a .d.ts of yours):
//
//   /// <reference types="gossipmonger-tls-transport/gossipmonger" />
//
// then `import Gossipmonger = require('gossipmonger')` (CommonJS) or
// `import Gossipmonger from 'gossipmonger'` (ESM, or esModuleInterop). Only
// gossipmonger's documented API is typed, plus `storage.get()` to read what a
// peer knows; test/types/gossip.ts compiles it.
declare module 'gossipmonger' {
  import { EventEmitter } from 'node:events';
  import type { EmittedError, TransportEvents } from 'gossipmonger-tls-transport';

  namespace Gossipmonger {
    /** Where a peer is reached: what this transport dials. */
    interface PeerTransport {
      host: string;
      port: number;
    }

    /** A peer as gossipmonger is given it (the local peer, or a seed). */
    interface PeerInfo {
      id: string;
      transport?: PeerTransport;
      /** Key -> [value, version]. */
      data?: Record<string, [unknown, number]>;
      /** The highest version seen from this peer; a restarted peer should start above its old one. */
      maxVersionSeen?: number;
    }

    /** A peer gossipmonger knows (from storage, or in a 'new peer' / 'peer dead' / 'peer live' event). */
    interface Peer {
      id: string;
      transport?: PeerTransport;
      data: Record<string, [unknown, number]>;
      maxVersionSeen: number;
      live: boolean;
    }

    /** What gossipmonger needs of a transport: this package's TcpTransport is one. */
    interface Transport {
      deltas (remotePeer: unknown, localPeer: unknown, deltas: unknown): void;
      digest (remotePeer: unknown, localPeer: unknown, digest: unknown): void;
      on<K extends keyof TransportEvents> (event: K, listener: (...args: TransportEvents[K]) => void): unknown;
    }

    interface Options {
      /** A listening transport (gossipmonger does not start it). */
      transport?: Transport;
      seeds?: PeerInfo[];
      /** ms between gossip rounds (1000). */
      GOSSIP_INTERVAL?: number;
      /** Phi accrual threshold past which a peer is taken for dead (8). */
      DEAD_PEER_PHI?: number;
      MAX_DELTAS_PER_GOSSIP?: number;
      /** Below this many live peers, a seed is asked every round (1). */
      MINIMUM_LIVE_PEERS?: number;
      storage?: unknown;
    }

    interface Events {
      /** Another peer's key changed: `(peerId, key, value)`. */
      update: [peerId: string, key: string, value: unknown];
      /** Every transport error is re-emitted here; attach a listener before anything can fail. */
      error: [error: EmittedError];
      'new peer': [peer: Peer];
      'peer dead': [peer: Peer];
      'peer live': [peer: Peer];
      'unknown peer': [id: string];
      'digest receive': [remotePeer: unknown, digest: unknown[]];
      'deltas receive': [remotePeer: unknown, deltas: unknown[]];
      'digest send': [remotePeer: unknown, digest: unknown[]];
      'deltas send': [remotePeer: unknown, deltas: unknown[]];
    }
  }

  class Gossipmonger extends EventEmitter<Gossipmonger.Events> {
    constructor (peerInfo: Gossipmonger.PeerInfo, options?: Gossipmonger.Options);
    /** Runs one round and schedules the next (0.1.10 has no stop(): see the README, "Stopping a node"). */
    gossip (): void;
    /** Sets a key of the local peer; it spreads with the next rounds. */
    update (key: string, value: unknown): void;
    readonly localPeer: Gossipmonger.Peer;
    readonly seeds: Gossipmonger.PeerInfo[];
    readonly transport: Gossipmonger.Transport;
    readonly storage: {
      get (id: string): Gossipmonger.Peer | undefined;
      livePeers (): Gossipmonger.Peer[];
      deadPeers (): Gossipmonger.Peer[];
    };
  }

  export = Gossipmonger;
}
