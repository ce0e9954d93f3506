/**
 * The message schema: the line between the network and gossipmonger.
 * gossipmonger@0.1.10's handlers call `deltas.forEach`, `delta.shift()` and
 * `storage.get(id).updateWithDelta(...)` without checks, so anything that
 * reaches them must have the shape they assume or the host process throws.
 *
 * This file is the single source of truth for what a valid message is.
 */

/**
 * Ids and keys that are properties of every plain object. gossipmonger's
 * memory storage looks peers up with `storage[id]`, so a peer named
 * `constructor` or `__proto__` resolves to a function or Object.prototype and
 * the handler throws; a delta key `__proto__` would rewrite a peer's prototype.
 */
export const RESERVED_NAMES: readonly string[] = Object.freeze(Object.getOwnPropertyNames(Object.prototype).sort());

/**
 * Deepest nesting of arrays and objects accepted in a value the schema leaves
 * open (a delta's value, extra properties of sender, transport and digest
 * entries). JSON.parse takes any depth, but JSON.stringify recurses: a value
 * nested ~10,000 deep arrives fine and then cannot be sent on, so one remote
 * could poison every gossip round that carries it. The fixed part of a
 * message is at most 4 levels, so no frame nests deeper than 64.
 */
export const MAX_VALUE_DEPTH = 60;

/**
 * True when `value` nests arrays and objects deeper than `max`. Walks the
 * parsed value with its own stack (no recursion, so any depth is safe), and
 * costs one step per array or object, not per byte: a 64 KB string is one step.
 */
export function nestsDeeperThan (value: unknown, max: number): boolean {
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const node = stack.pop();
    const depth = depths.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > max) return true;
    // Measured: Object.values beats for...in here (0.66 vs 0.9 us for a 1 KB digest).
    const children = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) {
        stack.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

/**
 * Bounds on what one message can add to gossipmonger's state and cost to
 * check. gossipmonger keeps every peer it hears of (id and `transport`) for
 * good and puts it in every digest it sends, so these are also bounds on
 * what a remote can make this node send.
 */
/** Longest peer id, in characters (a UUID is 36, a SPIFFE URI rarely over 100). */
export const MAX_ID_LENGTH = 256;
/** Longest `transport.host`: a DNS name is at most 253 characters. */
export const MAX_HOST_LENGTH = 253;
/**
 * Digest entries per message: one per peer the sender knows, so the largest
 * cluster a digest can describe. A 1000-peer digest as gossipmonger sends it
 * is about 80-140 KB; one of 2048 costs a few ms to parse and validate.
 */
export const MAX_DIGEST_ENTRIES = 2048;
/** Deltas per message (gossipmonger sends MAX_DELTAS_PER_GOSSIP, 5 by default). */
export const MAX_DELTAS = 4096;
/** Properties a `transport` object may have: host, port and a few more. */
export const MAX_TRANSPORT_PROPERTIES = 6;
/** Longest string in a `transport` property other than host, and longest property name there. */
export const MAX_TRANSPORT_STRING = 64;
/** Properties of `sender` (gossipmonger reads only id and transport). */
export const MAX_SENDER_PROPERTIES = 16;
/**
 * What parsing and validating a frame may cost, counted on its bytes before
 * JSON.parse. The cost grows with tokens, not bytes, and most with distinct
 * object keys (each makes JSON.parse build a dictionary entry): a 1 MiB frame
 * whose sender had 95,000 keys took ~100 ms. Tokens are each `{`, `[`, `,`
 * and `:` outside strings; properties each `:`. A 2048-entry digest as
 * gossipmonger builds it has about 22,500 tokens and 10,250 properties. A
 * frame under 32 KiB cannot reach either budget, so small frames skip the count.
 */
export const MAX_JSON_TOKENS = 32768;
export const MAX_JSON_PROPERTIES = 12288;

const peerId = { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH, not: { enum: RESERVED_NAMES } } as const;
/** Any JSON, nested at most MAX_VALUE_DEPTH deep (the maxDepth keyword below). */
const openValue = { maxDepth: MAX_VALUE_DEPTH } as const;
/**
 * What gossipmonger puts in `transport`: this transport's `{ host, port }`. A
 * few more properties are allowed for other transports' needs, as short
 * scalars: a peer's `transport` is kept forever and sent in every digest.
 */
const transportInfo = {
  type: 'object',
  maxProperties: MAX_TRANSPORT_PROPERTIES,
  propertyNames: { maxLength: MAX_TRANSPORT_STRING },
  properties: {
    host: { type: 'string', minLength: 1, maxLength: MAX_HOST_LENGTH },
    // A 0.1.6 node configured with `port: '9742'` (an environment variable)
    // advertises the string; parseMessage turns it into a number.
    port: { anyOf: [{ type: 'integer', minimum: 0, maximum: 65535 }, { type: 'string', pattern: '^[0-9]{1,5}$' }] }
  },
  additionalProperties: { anyOf: [{ type: 'string', maxLength: MAX_TRANSPORT_STRING }, { type: 'number' }, { type: 'boolean' }, { type: 'null' }] }
} as const;
const version = { type: 'integer', minimum: 0 } as const;

/**
 * JSON Schema (draft-07) of a message. Exported so users can read exactly what
 * is accepted.
 */
export const messageSchema = {
  $id: 'gossipmonger-tls-transport/message',
  type: 'object',
  required: ['sender'],
  additionalProperties: false,
  properties: {
    sender: {
      type: 'object',
      required: ['id'],
      maxProperties: MAX_SENDER_PROPERTIES,
      properties: { id: peerId, transport: transportInfo },
      additionalProperties: openValue
    },
    deltas: {
      type: 'array',
      maxItems: MAX_DELTAS,
      items: {
        // [peerId, key, value, version], as gossipmonger builds it.
        type: 'array',
        minItems: 4,
        maxItems: 4,
        items: [peerId, { type: 'string', not: { const: '__proto__' } }, openValue, version],
        additionalItems: false
      }
    },
    digest: {
      type: 'array',
      maxItems: MAX_DIGEST_ENTRIES,
      items: {
        type: 'object',
        required: ['id', 'maxVersionSeen'],
        properties: { id: peerId, maxVersionSeen: version, transport: transportInfo },
        // gossipmonger builds a Peer from the whole entry (new Peer(id, entry)), so an
        // extra `data: { k: null }` or `intervals: 'x'` would later make it throw.
        additionalProperties: false
      }
    }
  },
  // Exactly one of the two: with both present both branches match, and oneOf fails.
  oneOf: [{ required: ['deltas'] }, { required: ['digest'] }]
} as const;
