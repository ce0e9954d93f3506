/**
 * Peer links: one TLS connection that carries frames both ways between two
 * peers, instead of one connection per direction.
 *
 * Negotiated in the handshake: a pooling transport offers the ALPN name
 * `gossipmonger-link/1` (`gossipmonger-link/1/<cluster>` with a cluster)
 * before the cluster's own name, and a server that shares connections picks
 * it. A peer that does not offer it (an older release, a per-message sender)
 * or a server that does not pick it keeps one connection per direction.
 *
 * On a link the dialler reads frames as well as writing them, and the
 * acceptor writes frames once the connection is bound to a remote (see
 * IdentityPolicy.linkKey): every frame read either way goes through the
 * inbound checks (frame decoder, message validation, identity policy).
 *
 * When both peers dial each other at once, each ends up with two links for
 * one pair. Both keep the one whose `rank` is lower, a value both ends derive
 * identically from the connection's TLS secrets (RFC 8446 exporter) and no
 * other connection shares: no id or address needs to be spelt the same way
 * on both sides. The dialler of the other one ends it after what it wrote.
 */
import type { TLSSocket } from 'node:tls';

/** The ALPN name of a link, carrying the cluster name when there is one. */
export function linkProtocol (cluster: string | undefined): string {
  return cluster === undefined ? 'gossipmonger-link/1' : `gossipmonger-link/1/${cluster}`;
}

/** Exporter label for the rank (RFC 5705 / RFC 8446 section 7.5). */
const RANK_LABEL = 'EXPORTER-gossipmonger-link-rank';

/**
 * A value both ends of this TLS connection compute alike, and that differs
 * between connections: the simultaneous-dial rule keeps the lower one.
 */
export function linkRank (socket: TLSSocket): string {
  return socket.exportKeyingMaterial(16, RANK_LABEL, Buffer.alloc(0)).toString('hex');
}

/**
 * An inbound link bound to a remote: what the pool needs to write frames on a
 * connection the peer dialled. The inbound server owns the connection (its
 * deadlines, its close); the pool only writes.
 */
export interface PeerLink {
  readonly socket: TLSSocket;
  readonly rank: string;
  /** A frame written on it: activity for its owner's idle deadline. */
  touch (): void;
}
