// ESM typings for esm/index.mjs: the same names as the CommonJS entry, typed
// as an ES module so that `import` resolves to ESM declarations. A test keeps
// this list in step with src/index.ts.
import TcpTransport from '../dist/src/index.js';

export default TcpTransport;
declare const Named: typeof TcpTransport;
type Named = TcpTransport;
export { Named as TcpTransport };
export import TransportError = TcpTransport.TransportError;
export import MalformedPeerError = TcpTransport.MalformedPeerError;
export import FrameTooLargeError = TcpTransport.FrameTooLargeError;
export import InvalidMessageError = TcpTransport.InvalidMessageError;
export import PeerUnauthorizedError = TcpTransport.PeerUnauthorizedError;
export import ConnectTimeoutError = TcpTransport.ConnectTimeoutError;
export import IdleTimeoutError = TcpTransport.IdleTimeoutError;
export import HandshakeTimeoutError = TcpTransport.HandshakeTimeoutError;
export import TlsRefusedError = TcpTransport.TlsRefusedError;
export import TlsHandshakeError = TcpTransport.TlsHandshakeError;
export import BackpressureError = TcpTransport.BackpressureError;
export import ConnectionLostError = TcpTransport.ConnectionLostError;
export import ClusterMismatchError = TcpTransport.ClusterMismatchError;
export import PlaintextRefusedError = TcpTransport.PlaintextRefusedError;
export import FrameTimeoutError = TcpTransport.FrameTimeoutError;
export import ConnectionsRefusedError = TcpTransport.ConnectionsRefusedError;
export import PeerLimitError = TcpTransport.PeerLimitError;
export import ConnectionClosedError = TcpTransport.ConnectionClosedError;
export import ProtocolMismatchError = TcpTransport.ProtocolMismatchError;
export import TransportClosedError = TcpTransport.TransportClosedError;
export import ERROR_CODES = TcpTransport.ERROR_CODES;
export import ErrorCode = TcpTransport.ErrorCode;
export import messageSchema = TcpTransport.messageSchema;
export import DEFAULTS = TcpTransport.DEFAULTS;
export import TransportOptions = TcpTransport.TransportOptions;
export import TlsOptions = TcpTransport.TlsOptions;
export import KeepAliveOptions = TcpTransport.KeepAliveOptions;
export import PlaintextMigration = TcpTransport.PlaintextMigration;
export import AuthorizeFunction = TcpTransport.AuthorizeFunction;
export import EventInfo = TcpTransport.EventInfo;
export import TransportEvents = TcpTransport.TransportEvents;
export import TransportStats = TcpTransport.TransportStats;
export import Sender = TcpTransport.Sender;
export import Delta = TcpTransport.Delta;
export import DigestEntry = TcpTransport.DigestEntry;
export import Message = TcpTransport.Message;
export import FrameCounts = TcpTransport.FrameCounts;
