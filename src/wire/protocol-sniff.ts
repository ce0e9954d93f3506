/**
 * Telling TLS from plaintext by the first bytes, both ways round, so that a
 * node configured for the wrong protocol gets an error that says so.
 *
 * Every TLS record starts with a content type (0x16 handshake, 0x15 alert)
 * and a major version of 3; a JSON frame starts with `{` (or whitespace).
 * https://www.rfc-editor.org/rfc/rfc8446#section-5.1
 */
import { ProtocolMismatchError, type RemoteInfo } from '../errors';

export const TLS_HANDSHAKE = 0x16;
export const TLS_ALERT = 0x15;

/** A TLS record header: a ClientHello reaching a plain listener, or a TLS listener's alert to a plaintext sender. */
export function looksLikeTls (chunk: Buffer): boolean {
  return chunk.length >= 2 && (chunk[0] === TLS_HANDSHAKE || chunk[0] === TLS_ALERT) && chunk[1] === 0x03;
}

/**
 * A fatal TLS alert (unexpected_message, record version TLS 1.2): what a TLS
 * listener sends back to plaintext it refuses. A gossip receiver never
 * writes, so a plaintext sender that reads this knows the remote speaks TLS.
 */
export const TLS_REFUSAL_ALERT: Buffer = Buffer.from([TLS_ALERT, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a]);

export function plaintextToTls (remote: RemoteInfo): ProtocolMismatchError {
  return new ProtocolMismatchError('the remote speaks TLS and refused our plaintext: give this transport options.tls (with the cluster\'s CA), or, during a migration, set tls.plaintext.accept on the remote', remote);
}

export function tlsToPlain (remote: RemoteInfo): ProtocolMismatchError {
  return new ProtocolMismatchError('the remote sent a TLS ClientHello to this plaintext transport: it is configured with options.tls and this one is not (give both the same mode)', remote);
}
