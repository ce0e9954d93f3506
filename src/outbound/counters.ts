/**
 * What the outbound side counts for stats(): one object shared by the
 * per-message senders and the pool, read by the transport. Counting needs no
 * callback into the transport.
 */
import type { TLSSocket } from 'node:tls';
import type { AnySocket } from '../tls/socket-factory';

export class OutboundCounters {
  /** Connections opened (dials started), per message and pooled. */
  opened = 0;
  /** TLS connections that resumed a cached session. */
  resumed = 0;
  /** Frames handed to a socket, and their bytes. */
  framesOut = 0;
  bytesOut = 0;

  /** A remote accepted a connection: counted as resumed when its TLS session was. */
  accepted (socket: AnySocket): void {
    if ((socket as TLSSocket).isSessionReused?.()) this.resumed++;
  }

  /** One frame of `bytes` bytes handed to a socket. */
  sent (bytes: number): void {
    this.framesOut++;
    this.bytesOut += bytes;
  }
}
