/**
 * Public entry. `require('gossipmonger-tls-transport')` returns the
 * constructor itself, as 0.1.6 did, with the named exports hung on it;
 * `esm/index.mjs` gives ESM importers the same default and named exports.
 */
import * as errors from './errors';
import * as message from './wire/message';
import * as options from './options';
import * as ownCertificate from './tls/own-certificate';
import * as transport from './transport';

/** The transport. A subclass only so that the namespace below can merge with it. */
class TcpTransport extends transport.TcpTransport {}

const Self = TcpTransport;

namespace TcpTransport {
  export const TcpTransport = Self;
  export type TcpTransport = InstanceType<typeof Self>;
  export import TransportError = errors.TransportError;
  export import MalformedPeerError = errors.MalformedPeerError;
  export import FrameTooLargeError = errors.FrameTooLargeError;
  export import InvalidMessageError = errors.InvalidMessageError;
  export import PeerUnauthorizedError = errors.PeerUnauthorizedError;
  export import ConnectTimeoutError = errors.ConnectTimeoutError;
  export import IdleTimeoutError = errors.IdleTimeoutError;
  export import HandshakeTimeoutError = errors.HandshakeTimeoutError;
  export import TlsRefusedError = errors.TlsRefusedError;
  export import TlsHandshakeError = errors.TlsHandshakeError;
  export import BackpressureError = errors.BackpressureError;
  export import ConnectionLostError = errors.ConnectionLostError;
  export import ClusterMismatchError = errors.ClusterMismatchError;
  export import PlaintextRefusedError = errors.PlaintextRefusedError;
  export import PeerUntrustedError = errors.PeerUntrustedError;
  export import DestinationRefusedError = errors.DestinationRefusedError;
  export import OutboundLimitError = errors.OutboundLimitError;
  export import CloseTimeoutError = errors.CloseTimeoutError;
  export import CertReloadError = errors.CertReloadError;
  export import TrustMaterialError = errors.TrustMaterialError;
  export import FrameTimeoutError = errors.FrameTimeoutError;
  export import ConnectionsRefusedError = errors.ConnectionsRefusedError;
  export import PeerLimitError = errors.PeerLimitError;
  export import ConnectionClosedError = errors.ConnectionClosedError;
  export import ProtocolMismatchError = errors.ProtocolMismatchError;
  export import TransportClosedError = errors.TransportClosedError;
  export import CertificateWarning = errors.CertificateWarning;
  export const ERROR_CODES = errors.ERROR_CODES;
  export const WARNING_CODES = errors.WARNING_CODES;
  export type WarningCode = errors.WarningCode;
  export const CERT_WARNING_DAYS = ownCertificate.CERT_WARNING_DAYS;
  export type ErrorCode = errors.ErrorCode;
  export type FrameCounts = errors.FrameCounts;
  export type EmittedError = errors.EmittedError;
  export type ThrownTransportError = errors.ThrownTransportError;
  export type NodeError = errors.NodeError;
  export type NodeErrorCode = errors.NodeErrorCode;
  export const THROWN_CODES = errors.THROWN_CODES;
  export type ThrownCode = errors.ThrownCode;
  export type InvalidOptionError = errors.InvalidOptionError;
  export const messageSchema = message.messageSchema;
  export const DEFAULTS = options.DEFAULTS;
  export type TransportOptions = options.TransportOptions;
  export type TlsOptions = options.TlsOptions;
  export type KeepAliveOptions = options.KeepAliveOptions;
  export type PlaintextMigration = options.PlaintextMigration;
  export type AuthorizeFunction = options.AuthorizeFunction;
  export type AuthorizeContext = options.AuthorizeContext;
  export type OutboundOptions = options.OutboundOptions;
  export type MembershipOptions = options.MembershipOptions;
  export type LookupFunction = options.LookupFunction;
  export type NetworkList = options.NetworkList;
  export type CertificateFiles = options.CertificateFiles;
  export type CertificateWatch = options.CertificateWatch;
  export type EventInfo = transport.EventInfo;
  export type TransportEvents = transport.TransportEvents;
  export type TransportStats = transport.TransportStats;
  export type Sender = message.Sender;
  export type Delta = message.Delta;
  export type DigestEntry = message.DigestEntry;
  export type Message = message.Message;
}

export = TcpTransport;
