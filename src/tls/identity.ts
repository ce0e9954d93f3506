/**
 * Identity policy, in one place: the only reader of `tls.authorize` outside
 * option validation. Every decision about who a certificate may speak for is
 * made here: the inbound sender check of each frame, the outbound check of the
 * server we dial for a peer id, the re-check of live connections after a
 * rotation or revocation, and what is noted of a peer's certificate (the
 * `certificate` of an event's info, and expiry for stats()).
 *
 * `'sender-id'` binds `sender.id` to the certificate's subject CN or one of
 * its subjectAltName URI entries. DNS names are deliberately not identities:
 * every peer certificate in a cluster names `localhost` or a shared host name,
 * so matching them would let any peer claim any of those ids.
 */
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { PeerUnauthorizedError } from '../errors';
import type { Sender } from '../wire/message';
import type { AuthorizeContext, ResolvedTls } from '../options';
import { liveCertificateProblem, parsePeerLike, subjectOf, verifyChain, type Material, type TrustStore } from './trust';

/** Peer identities whose certificate expiry stats() remembers. */
const PEER_CERTIFICATES_TRACKED = 4096;

/** What stats() says of the soonest-expiring peer certificate. */
export interface PeerCertificateSeen { expires: number; subject: string; fingerprint256: string }

/** Where a connection is, for a function policy's context and errors. */
export interface RemoteAddress { remoteAddress: string | undefined; remotePort: number | undefined }

/** The URI entries of a certificate's subjectAltName, as Node prints it. */
export function sanUris (certificate: PeerCertificate): string[] {
  const san = certificate.subjectaltname;
  if (!san) return [];
  const uris: string[] = [];
  // Node prints "DNS:a, URI:b"; since CVE-2021-44532 a value with a comma or
  // quote is printed as a JSON string ("URI:\"a,b\""), so parse both forms.
  const pattern = /(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(san)) !== null) {
    const raw = match[1]!;
    if (raw.startsWith('"')) {
      try {
        uris.push(JSON.parse(raw) as string);
      } catch {
        // An unparsable entry names nobody.
      }
    } else {
      uris.push(raw);
    }
  }
  return uris;
}

/** The identities a certificate proves: subject CN and SAN URIs. */
export function certificateIdentities (certificate: PeerCertificate): string[] {
  const ids = sanUris(certificate);
  const cn = certificate.subject?.CN;
  // A multi-valued CN is an array in Node's object; each value counts.
  if (typeof cn === 'string') ids.push(cn);
  else if (Array.isArray(cn)) ids.push(...(cn as string[]));
  return ids;
}

/**
 * True when the policy lets `certificate` speak for `peer`: inbound, the
 * client certificate for the message's sender; outbound, the server
 * certificate for the peer we are sending to. A function policy is asked both
 * ways and told which in `context.direction`. A function that throws refuses:
 * a bug in the user's policy must fail closed.
 */
export function isAuthorized (
  policy: ResolvedTls['authorize'],
  peer: Sender,
  certificate: PeerCertificate | undefined,
  context: AuthorizeContext = { direction: 'inbound' }
): boolean {
  if (policy === 'any') return true;
  if (policy === 'sender-id') {
    if (!certificate || typeof peer.id !== 'string' || peer.id.length === 0) return false;
    return certificateIdentities(certificate).includes(peer.id);
  }
  try {
    return policy(peer, certificate, context) === true;
  } catch {
    return false;
  }
}

/** The certificate part of an event's info: subject and fingerprint, never the key or raw bytes. */
export function describeCertificate (certificate: PeerCertificate): { subject: Record<string, string | string[]>; fingerprint256: string } {
  return { subject: { ...certificate.subject } as Record<string, string | string[]>, fingerprint256: certificate.fingerprint256 };
}

/**
 * The identity policy of one transport. With no TLS (`tls` unset) every
 * answer is the permissive one: there is no certificate to bind anything to.
 */
export class IdentityPolicy {
  readonly #policy: ResolvedTls['authorize'];
  /** Peer certificates seen, by identity: the latest one's expiry (bounded). */
  readonly #peerCertificates = new Map<string, PeerCertificateSeen>();

  constructor (tls: ResolvedTls | undefined) {
    this.#policy = tls?.authorize ?? 'any';
  }

  /**
   * Outbound connections and cached sessions belong to one peer id: a policy
   * checks the server for the id it is dialled for.
   */
  get perPeer (): boolean {
    return this.#policy !== 'any';
  }

  /**
   * Told of every outbound certificate verdict under a policy that binds ids
   * (`provesIds`): the server at host:port was accepted, or refused, for
   * `peerId`. Membership records these as proofs (inbound/membership.ts).
   */
  onServerVerdict: ((peerId: string, host: string, port: number, accepted: boolean) => void) | undefined;

  /**
   * A certificate the policy accepts for an id proves that id (membership):
   * `'sender-id'` or a function. With `'any'` a certificate says nothing about ids.
   */
  get provesIds (): boolean {
    return this.#policy !== 'any';
  }

  /** Certificates bind sender ids (`'sender-id'`): a connection that passed the check speaks for one id. */
  get bindsSenderId (): boolean {
    return this.#policy === 'sender-id';
  }

  /**
   * Node's server identity check may read the server's leaf alone; a policy
   * function of the user's is given the whole chain, as Node gives it.
   */
  get wantsWholeChain (): boolean {
    return typeof this.#policy === 'function';
  }

  /**
   * Connections may be shared both ways (tls/link.ts): under `'any'` and
   * `'sender-id'`. A function policy is asked about client certificates
   * inbound and server certificates outbound, per direction; a shared
   * connection would hand it the other kind, so it keeps one connection per
   * direction.
   */
  get allowsLinks (): boolean {
    return typeof this.#policy !== 'function';
  }

  /**
   * The pool's key for a remote: its address, and under a policy other than
   * `'any'` the peer id its server must prove. An inbound link bound to the
   * same key carries that remote's frames too.
   */
  remoteKey (peerId: string | undefined, host: string, port: number): string {
    const id = this.perPeer ? peerId : undefined;
    return id === undefined ? `${host}:${port}` : `${id}@${host}:${port}`;
  }

  /**
   * The remote an inbound link may carry frames for, once a frame from
   * `sender` has passed inbound(): the key of the address the sender
   * advertises, when the connection proves what a dial to that address would.
   * Under `'sender-id'` the certificate names the sender's id (checked on
   * every frame), and the key includes the id, so frames for that id alone
   * go over it. Under `'any'` the client certificate must have verified
   * against `ca` and name the advertised host by the check a dial to it makes
   * of the server (`namesHost`). Either way the certificate must have
   * verified against `ca` (`authorized`). Otherwise no key: the connection is
   * read, never written to.
   */
  linkKey (sender: Sender, certificate: PeerCertificate | undefined, authorized: boolean, namesHost: (certificate: PeerCertificate, host: string) => boolean): string | undefined {
    const host = sender.transport?.host;
    const port = sender.transport?.port;
    if (typeof host !== 'string' || host.length === 0 || typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
    if (!authorized || certificate === undefined) return undefined;
    if (this.#policy === 'sender-id') return this.remoteKey(sender.id, host, port);
    if (this.#policy !== 'any' || !namesHost(certificate, host)) return undefined;
    return this.remoteKey(undefined, host, port);
  }

  /** A send under `'sender-id'` needs a peer id the server can prove; without one nothing is sent. */
  refusesAnonymousSend (peerId: string | undefined): boolean {
    return this.#policy === 'sender-id' && (peerId === undefined || peerId.length === 0);
  }

  /** May this client certificate speak for the sender of a frame that came over `remote`? */
  inbound (sender: Sender, certificate: PeerCertificate | undefined, remote: RemoteAddress): boolean {
    if (this.#policy === 'any') return true;
    return isAuthorized(this.#policy, sender, certificate, { direction: 'inbound', ...remote });
  }

  /** May this server certificate speak for the peer we dialled at host:port? */
  outbound (peerId: string | undefined, host: string, port: number, certificate: PeerCertificate | undefined): boolean {
    if (this.#policy === 'any') return true;
    return isAuthorized(this.#policy, { id: peerId!, transport: { host, port } }, certificate, { direction: 'outbound', remoteAddress: host, remotePort: port });
  }

  /**
   * The outbound check of a new connection, before anything is written: the
   * server's certificate (the one its session was made with, when resumed)
   * must be one the policy lets speak for `peerId`. The refusal counts the
   * frames that waited for the connection.
   */
  checkServer (peerId: string | undefined, host: string, port: number, pendingFrames: number, certificate: PeerCertificate | undefined): Error | undefined {
    if (certificate !== undefined) this.notePeer(certificate);
    const accepted = this.outbound(peerId, host, port, certificate);
    if (this.#policy !== 'any' && peerId !== undefined) this.onServerVerdict?.(peerId, host, port, accepted);
    if (accepted) return undefined;
    return new PeerUnauthorizedError(peerId ?? '', { outbound: true, framesDropped: pendingFrames, remoteAddress: host, remotePort: port, peerId });
  }

  /**
   * After a rotation or revocation: why a live inbound connection's client
   * certificate would not be accepted now (CA, CRL, then the policy for the
   * last sender it spoke for), or undefined when it still would be.
   */
  recheckClient (presented: PeerCertificate | undefined, certificate: PeerCertificate | undefined, lastSender: Sender | undefined, trust: TrustStore, remote: RemoteAddress): string | undefined {
    const problem = liveCertificateProblem(presented, trust);
    if (problem !== undefined) return problem;
    if (lastSender !== undefined && !this.inbound(lastSender, certificate, remote)) return 'authorize';
    return undefined;
  }

  /** After a rotation: why a live outbound connection's server would not be accepted now (CA, CRL, policy). */
  recheckServer (chain: X509Certificate[], certificate: PeerCertificate | undefined, peerId: string | undefined, host: string, port: number, trust: TrustStore): string | undefined {
    return verifyChain(chain, trust) ?? (this.outbound(peerId, host, port, certificate) ? undefined : 'authorize');
  }

  /**
   * Under `'sender-id'`, the id a reloaded certificate must still name: the
   * id this node last sent as, else the current certificate's subject.
   */
  ownId (localId: string | undefined, cert: Material): string | undefined {
    if (this.#policy !== 'sender-id') return undefined;
    return localId ?? subjectOf(parsePeerLike(cert));
  }

  /** A verified peer certificate was seen (either direction): remember its expiry, keyed by identity. */
  notePeer (certificate: PeerCertificate): void {
    const expires = Date.parse(certificate.valid_to);
    if (Number.isNaN(expires)) return;
    const subject = subjectOf(certificate) ?? certificate.fingerprint256;
    const known = this.#peerCertificates;
    // Keyed by identity, so a peer's renewed certificate replaces its old one.
    known.delete(subject);
    known.set(subject, { expires, subject, fingerprint256: certificate.fingerprint256 });
    if (known.size > PEER_CERTIFICATES_TRACKED) known.delete(known.keys().next().value!);
  }

  /** The soonest-expiring among the latest certificate seen from each peer identity. */
  soonestPeer (): PeerCertificateSeen | undefined {
    let soonest: PeerCertificateSeen | undefined;
    for (const seen of this.#peerCertificates.values()) {
      if (soonest === undefined || seen.expires < soonest.expires) soonest = seen;
    }
    return soonest === undefined ? undefined : { ...soonest };
  }
}
