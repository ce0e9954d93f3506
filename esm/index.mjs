// ESM entry: Node's CommonJS lexer cannot see names hung on a constructor,
// so they are re-exported here by hand. A test keeps this list complete.
import TcpTransport from '../dist/src/index.js';

export default TcpTransport;
const Named = TcpTransport.TcpTransport;
export { Named as TcpTransport };
export const {
  TransportError,
  MalformedPeerError,
  FrameTooLargeError,
  InvalidMessageError,
  PeerUnauthorizedError,
  ConnectTimeoutError,
  IdleTimeoutError,
  HandshakeTimeoutError,
  TlsRefusedError,
  TlsHandshakeError,
  BackpressureError,
  ConnectionLostError,
  ClusterMismatchError,
  PlaintextRefusedError,
  PeerUntrustedError,
  DestinationRefusedError,
  OutboundLimitError,
  CloseTimeoutError,
  CertReloadError,
  TrustMaterialError,
  FrameTimeoutError,
  ConnectionsRefusedError,
  PeerLimitError,
  ConnectionClosedError,
  ProtocolMismatchError,
  TransportClosedError,
  CertificateWarning,
  ERROR_CODES,
  THROWN_CODES,
  WARNING_CODES,
  CERT_WARNING_DAYS,
  messageSchema,
  DEFAULTS
} = TcpTransport;
