/**
 * Frame bytes -> validated message: UTF-8 check, a cost budget counted on
 * the bytes, JSON.parse, then the schema of schema.ts.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import type { ValidateFunction } from 'ajv';
import { InvalidMessageError } from '../errors';
import { MAX_JSON_PROPERTIES, MAX_JSON_TOKENS } from './schema';

export { MAX_VALUE_DEPTH, RESERVED_NAMES, messageSchema, nestsDeeperThan } from './schema';

/**
 * Frames up to this size are parsed without counting: the smallest token is
 * two bytes (`0,`) and the smallest property five (`"":0,`), so they cannot
 * reach MAX_JSON_TOKENS or MAX_JSON_PROPERTIES.
 */
const COUNT_FROM = 32 * 1024;

/**
 * Which budget `frame` exceeds, if any: more than `maxTokens` JSON tokens
 * (`{`, `[`, `,`, `:` outside strings) or more than `maxProperties`
 * properties (`:`). One pass over the bytes, stopping at the first token past
 * a budget: about 1 ms per MiB. Invalid JSON is left for JSON.parse to refuse.
 */
export function jsonCostOver (frame: Uint8Array, maxTokens: number, maxProperties: number): 'tokens' | 'properties' | undefined {
  // Every token is one byte, one of four, and a property is one of them: no
  // more of those bytes than the smaller budget settles it without the byte
  // loop (a 64 KB delta value: a few memchr calls instead of a JS loop over 64 KB).
  const budget = Math.min(maxTokens, maxProperties);
  if (frame.length <= budget || !tokenBytesOver(frame, budget)) return undefined;
  let tokens = 0;
  let properties = 0;
  let inString = false;
  for (let i = 0; i < frame.length; i++) {
    const c = frame[i]!;
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x2c || c === 0x3a || c === 0x7b || c === 0x5b) {
      if (++tokens > maxTokens) return 'tokens';
      if (c === 0x3a && ++properties > maxProperties) return 'properties';
    }
  }
  return undefined;
}

const TOKEN_BYTES = [0x2c, 0x3a, 0x7b, 0x5b];

/**
 * Whether the frame may hold more than `max` tokens: false when it has at most
 * `max` of the four token bytes, inside strings or not (an upper bound), found
 * with Buffer#indexOf. Gives up (true: count exactly) once it has seen one per
 * 256 bytes: dense JSON is the byte loop's case, and the give-up then costs
 * a small part of it (at most one indexOf call per 256 bytes).
 */
function tokenBytesOver (frame: Uint8Array, max: number): boolean {
  const bytes = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const cap = Math.min(max, bytes.length >> 8);
  let count = 0;
  for (const byte of TOKEN_BYTES) {
    for (let at = bytes.indexOf(byte); at !== -1; at = bytes.indexOf(byte, at + 1)) {
      if (++count > cap) return true;
    }
  }
  return false;
}

export interface PeerTransportInfo {
  host?: string;
  port?: number;
  [key: string]: unknown;
}

export interface Sender {
  id: string;
  transport?: PeerTransportInfo;
  [key: string]: unknown;
}

/** One delta: `[peerId, key, value, version]`. */
export type Delta = [string, string, unknown, number];

export interface DigestEntry {
  id: string;
  maxVersionSeen: number;
  transport?: PeerTransportInfo;
  [key: string]: unknown;
}

export type Message =
  | { sender: Sender; deltas: Delta[]; digest?: undefined }
  | { sender: Sender; digest: DigestEntry[]; deltas?: undefined };

/** The generated module: the validator, and its two halves for the tests and the benchmark. */
export interface GeneratedValidator extends ValidateFunction<Message> {
  /** The check specialised for the schema's shapes alone: true only for a valid message. */
  accepts (value: unknown): boolean;
  /** ajv's standalone code alone (the validator before the specialised check). */
  ajv: ValidateFunction<Message>;
}

// The schema of schema.ts compiled at build time into standalone code
// (scripts/generate-validator.ts): ajv's, behind a check specialised for the
// shapes gossipmonger sends (scripts/fast-path.ts). Loading it costs a
// fraction of a millisecond, where compiling the schema at require() took
// about 90 ms. A test checks that it answers exactly as ajv compiling the
// schema now does.
export const generatedValidator = require('./validate-message.js') as GeneratedValidator;

/**
 * Parses and validates one frame. Throws InvalidMessageError (code
 * ERR_INVALID_MESSAGE) for bytes that are not UTF-8, not JSON, or not a message.
 */
export function parseMessage (frame: Buffer): Message {
  const validate = generatedValidator;
  // Invalid UTF-8 would otherwise be replaced by U+FFFD silently and change
  // ids. Gossip is nearly always ASCII, which is valid UTF-8 and decodes as
  // latin1 to the same string, faster (64 KB: 4.2 against 6.8 us).
  const ascii = isAscii(frame);
  if (!ascii && !isUtf8(frame)) throw new InvalidMessageError('frame is not valid UTF-8');
  const over = frame.length > COUNT_FROM ? jsonCostOver(frame, MAX_JSON_TOKENS, MAX_JSON_PROPERTIES) : undefined;
  if (over !== undefined) {
    throw new InvalidMessageError(`frame holds more than ${over === 'tokens' ? `${MAX_JSON_TOKENS} JSON tokens` : `${MAX_JSON_PROPERTIES} JSON properties`}; refused before parsing`);
  }
  let value: unknown;
  try {
    value = JSON.parse(frame.toString(ascii ? 'latin1' : 'utf8'));
  } catch (error) {
    // V8's message quotes the text around the fault: a refused frame's content
    // must not travel on in an error (logs, channels). Only the position
    // does, and no cause.
    const at = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new InvalidMessageError(`frame is not JSON${at === undefined ? '' : ` (at character ${at})`}`);
  }
  if (!validate(value)) {
    const first = validate.errors?.[0];
    const where = first ? `${schemaPath(first.instancePath)} ${first.message ?? ''}`.trim() : 'does not fit the schema';
    throw new InvalidMessageError(`message does not fit the schema: ${where}`);
  }
  normalizePort(value.sender.transport, '/sender/transport/port');
  if (value.digest !== undefined) {
    for (let i = 0; i < value.digest.length; i++) normalizePort(value.digest[i]!.transport, `/digest/${i}/transport/port`);
  }
  return value;
}

/** Property names of the message schema: a path through them says where, and holds nothing the sender chose. */
const SCHEMA_NAMES = new Set(['sender', 'id', 'transport', 'host', 'port', 'deltas', 'digest', 'maxVersionSeen']);

/**
 * An instance path for an error message: indexes and the schema's own names
 * kept, any other property name (a key the sender chose, which may be data)
 * replaced by `*`.
 */
function schemaPath (path: string): string {
  if (path === '') return '/';
  return path.split('/').map((part, i) => i === 0 || /^[0-9]+$/.test(part) || SCHEMA_NAMES.has(part) ? part : '*').join('/');
}

/** A decimal string port (from a 0.1.6 node) becomes the number it names; over 65535 is refused. */
function normalizePort (transport: PeerTransportInfo | undefined, where: string): void {
  const port: unknown = transport?.port;
  if (typeof port !== 'string') return;
  const n = Number(port);
  if (n > 65535) throw new InvalidMessageError(`message does not fit the schema: ${where} must be a port from 0 to 65535`);
  transport!.port = n;
}
