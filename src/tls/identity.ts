/**
 * tls.authorize: may this certificate speak for this sender?
 *
 * `'sender-id'` binds `sender.id` to the certificate's subject CN or one of
 * its subjectAltName URI entries. DNS names are deliberately not identities:
 * every peer certificate in a cluster names `localhost` or a shared host name,
 * so matching them would let any peer claim any of those ids.
 */
import type { PeerCertificate } from 'node:tls';
import type { Sender } from '../wire/message';
import type { AuthorizeContext, ResolvedTls } from '../options';

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
