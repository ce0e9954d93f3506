/**
 * One defaults object, and the shape options take once validated and filled in.
 */
import type { SecureContextOptions } from 'node:tls';
import type { AllowList } from '../net/addresses';
import type { AuthorizeFunction, LookupFunction, TlsOptions } from './types';

export const DEFAULTS = Object.freeze({
  host: 'localhost',
  port: 9742,
  maxFrameSize: 1024 * 1024,
  keepAlive: false,
  /** keepAlive when `tls` is set and `keepAlive` is not given. */
  keepAliveWithTls: true,
  connectTimeout: 5000,
  handshakeTimeout: 5000,
  idleTimeout: 360000,
  maxConnections: 256,
  maxHandshakes: 32,
  frameTimeout: 20000,
  maxConnectionsPerSource: 32,
  connectionsPerSecondPerSource: 50,
  maxPeers: 2048,
  membershipPendingPerIntroducer: 16,
  membershipProofsPerSecond: 32,
  membershipProofTimeout: 10000,
  membershipIdsPerSource: 64,
  keepAliveIdleTimeout: 300000,
  keepAliveMaxQueuedBytes: 8 * 1024 * 1024,
  tlsMinVersion: 'TLSv1.2' as const,
  tlsRequestCert: false,
  tlsRejectUnauthorized: true,
  tlsAuthorize: 'any' as const,
  tlsSessionCache: 256,
  outboundMaxConnections: 512,
  outboundMaxPerDestination: 256,
  outboundMaxPooledRemotes: 256,
  outboundMaxQueuedBytes: 64 * 1024 * 1024,
  outboundMaxHandshakes: 1
});

/** Options after validation and defaults. */
export interface ResolvedOptions {
  host: string;
  port: number;
  tls: ResolvedTls | undefined;
  maxFrameSize: number;
  keepAlive: { idleTimeout: number; maxQueuedBytes: number } | undefined;
  connectTimeout: number;
  handshakeTimeout: number;
  idleTimeout: number;
  maxConnections: number;
  maxHandshakes: number;
  frameTimeout: number;
  maxConnectionsPerSource: number;
  connectionsPerSecondPerSource: number;
  maxPeers: number;
  membership: { enforce: boolean; pendingPerIntroducer: number; proofsPerSecond: number; proofTimeout: number; idsPerSource: number };
  cluster: string | undefined;
  allowFrom: AllowList | undefined;
  outbound: {
    allow: AllowList | undefined;
    lookup: LookupFunction | undefined;
    maxConnections: number;
    maxPerDestination: number;
    maxPooledRemotes: number;
    maxQueuedBytes: number;
    maxHandshakes: number;
  };
}

export interface ResolvedTls {
  /** Secure-context material only (key, cert, ca, ciphers...). */
  context: SecureContextOptions;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  authorize: 'any' | 'sender-id' | AuthorizeFunction;
  servername: string | undefined;
  checkServerIdentity: TlsOptions['checkServerIdentity'];
  sessionCache: number;
  plaintext: { accept: boolean; send: boolean; until: number | undefined };
}
