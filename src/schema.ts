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

const peerId = { type: 'string', minLength: 1, not: { enum: RESERVED_NAMES } } as const;
/** What gossipmonger puts in `transport`: this transport's `{ host, port }`, left open to extra keys. */
/** Any JSON, nested at most MAX_VALUE_DEPTH deep (the maxDepth keyword below). */
const openValue = { maxDepth: MAX_VALUE_DEPTH } as const;
const transportInfo = {
  type: 'object',
  properties: {
    host: { type: 'string', minLength: 1 },
    // A 0.1.6 node configured with `port: '9742'` (an environment variable)
    // advertises the string; parseMessage turns it into a number.
    port: { anyOf: [{ type: 'integer', minimum: 0, maximum: 65535 }, { type: 'string', pattern: '^[0-9]{1,5}$' }] }
  },
  additionalProperties: openValue
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
      properties: { id: peerId, transport: transportInfo },
      additionalProperties: openValue
    },
    deltas: {
      type: 'array',
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
