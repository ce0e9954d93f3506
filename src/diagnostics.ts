/**
 * Observability without options: `diagnostics_channel` channels for the
 * connection lifecycle, rotations and errors, and
 * `NODE_DEBUG=gossipmonger-tls-transport` logging.
 *
 * Publish once, log by subscribing: call sites only publish (guarded by
 * `hasSubscribers`, so with nobody subscribed a lifecycle point costs one
 * property read and builds no object); the debug log is one more subscriber
 * of every channel, so it cannot miss an event the channels see. Channel names
 * are part of the public API: see docs/reference.md, "Diagnostics channels".
 */
import { channel, subscribe } from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

const PREFIX = 'gossipmonger-tls-transport:';

export const channels = Object.freeze({
  /** An inbound connection was admitted: `{ remoteAddress, remotePort }`. */
  inboundAccepted: channel(`${PREFIX}inbound:accepted`),
  /** An inbound connection was refused or evicted: `{ remoteAddress, remotePort, reason }`. */
  inboundRefused: channel(`${PREFIX}inbound:refused`),
  /** An admitted inbound connection closed: `{ remoteAddress, remotePort, error }` (`error` undefined when clean). */
  inboundClosed: channel(`${PREFIX}inbound:closed`),
  /** An outbound connection was accepted by its remote: `{ host, port, secure, resumed }`. */
  outboundOpened: channel(`${PREFIX}outbound:opened`),
  /** An outbound connection failed before it was accepted: `{ host, port, error }`. */
  outboundFailed: channel(`${PREFIX}outbound:failed`),
  /** An accepted outbound connection closed: `{ host, port, error }`. */
  outboundClosed: channel(`${PREFIX}outbound:closed`),
  /**
   * An inbound frame was refused (too large, not a message, not authorized):
   * `{ remoteAddress, remotePort, error }`; the connection is then closed.
   */
  frameRefused: channel(`${PREFIX}frame:refused`),
  /**
   * This node obtained proof of a peer id (see README, "Proven membership"):
   * `{ id, proof: 'certificate' | 'contact', direction: 'inbound' | 'outbound', host, port }`
   * (`host`/`port`: the address proven for the id, or the one it announced).
   */
  peerProven: channel(`${PREFIX}peer:proven`),
  /**
   * A proof attempt failed, or introductions were turned away without one:
   * `{ id, host, port, introducer, reason, count }` (`id` undefined and
   * `count` ids for introductions one message made past a bound; `reason`
   * 'certificate', 'unreachable', 'timeout', 'evicted', 'share', 'rate' or
   * 'recently-refused').
   */
  peerRefused: channel(`${PREFIX}peer:refused`),
  /** New key, certificate or CA material was swapped in (setSecureContext, or a watched reload): `{ generation, expires }`. */
  tlsRotated: channel(`${PREFIX}tls:rotated`),
  /** The transport emitted an 'error' (every failure, ours and Node's): `{ error }`. */
  error: channel(`${PREFIX}error`)
});

type Message = Record<string, unknown>;

/** What an error says in a debug line: its code and message, never its cause or stack. */
function describeError (error: unknown): string {
  if (error === undefined) return 'clean';
  const e = error as { code?: unknown; message?: unknown };
  return `${typeof e.code === 'string' ? e.code : 'error'}: ${String(e.message)}`;
}

function at (m: Message): string {
  return m.host !== undefined ? `${String(m.host)}:${String(m.port)}` : `${String(m.remoteAddress)}:${String(m.remotePort)}`;
}

/** One line per channel event. */
const LINES: Record<keyof typeof channels, (m: Message) => string> = {
  inboundAccepted: (m) => `inbound ${at(m)} accepted`,
  inboundRefused: (m) => `inbound ${at(m)} refused (${String(m.reason)})`,
  inboundClosed: (m) => `inbound ${at(m)} closed (${describeError(m.error)})`,
  outboundOpened: (m) => `outbound ${at(m)} opened (${m.secure === true ? (m.resumed === true ? 'TLS, resumed' : 'TLS') : 'plain'})`,
  outboundFailed: (m) => `outbound ${at(m)} failed (${describeError(m.error)})`,
  outboundClosed: (m) => `outbound ${at(m)} closed (${describeError(m.error)})`,
  frameRefused: (m) => `inbound ${at(m)} frame refused (${describeError(m.error)})`,
  peerProven: (m) => `peer ${String(m.id)} proven by ${String(m.proof)} (${String(m.direction)}${m.host !== undefined ? ` ${at(m)}` : ''})`,
  peerRefused: (m) => m.id !== undefined
    ? `peer ${String(m.id)} at ${at(m)} refused (${String(m.reason)}; introduced by ${String(m.introducer)})`
    : `${String(m.count)} peer id(s) introduced by ${String(m.introducer)} refused (${String(m.reason)})`,
  tlsRotated: (m) => `secure context replaced (generation ${String(m.generation)}, certificate expires ${typeof m.expires === 'number' ? new Date(m.expires).toISOString() : 'unknown'})`,
  error: (m) => `error ${describeError(m.error)}`
};

/** `NODE_DEBUG=gossipmonger-tls-transport` turns the log on; it is a subscriber like any other. */
const debug = debuglog('gossipmonger-tls-transport');
if (debug.enabled) {
  for (const name of Object.keys(channels) as Array<keyof typeof channels>) {
    const line = LINES[name];
    subscribe(channels[name].name as string, (message) => debug('%s', line(message as Message)));
  }
}
