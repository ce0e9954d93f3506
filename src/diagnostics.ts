/**
 * Observability without options: `diagnostics_channel` channels for the
 * connection lifecycle, and `NODE_DEBUG=gossipmonger-tls-transport` logging.
 *
 * Publishing is guarded by `hasSubscribers` at every call site, so with nobody
 * subscribed a lifecycle point costs one property read and builds no object.
 * Channel names are part of the public API: see README, "Observability".
 */
import { channel } from 'node:diagnostics_channel';
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
  frameRefused: channel(`${PREFIX}frame:refused`)
});

/** `NODE_DEBUG=gossipmonger-tls-transport` turns this on. */
export const debug = debuglog('gossipmonger-tls-transport');
