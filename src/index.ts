/**
 * Public entry. `require('gossipmonger-tls-transport')` returns the
 * constructor itself, as 0.1.6 did, with the named exports hung on it;
 * `dist/esm/index.mjs`, generated from this module at build
 * (scripts/generate-esm.ts), gives ESM importers the same default and named
 * exports.
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
  // Not an error code (a warning event's payload), so not found by the loop below.
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

/**
 * Every error class of src/errors.ts (TransportError and its subclasses) is
 * exported by its name, found here rather than listed, so that a new code is
 * written in errors.ts (class and table) and nowhere else. TypeScript cannot
 * type names added this way; the build adds their declarations to this
 * module's (scripts/generate-esm.ts), from the same classes.
 */
for (const [name, value] of Object.entries(errors)) {
  if (typeof value === 'function' && (value === errors.TransportError || value.prototype instanceof errors.TransportError)) {
    (TcpTransport as unknown as Record<string, unknown>)[name] = value;
  }
}

export = TcpTransport;
