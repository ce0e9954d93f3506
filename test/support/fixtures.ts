/** Messages shared by the schema unit tests and the transport suite. */
import { MAX_DELTAS, MAX_DIGEST_ENTRIES, MAX_HOST_LENGTH, MAX_ID_LENGTH, MAX_SENDER_PROPERTIES, MAX_TRANSPORT_PROPERTIES, MAX_TRANSPORT_STRING } from '../../src/wire/schema';

export const sender = { id: 'peer-a', transport: { host: 'localhost', port: 9742 } };

/** Every shape the transport must refuse, with a name for the test title. */
export const INVALID_MESSAGES: Array<[string, string]> = [
  ['not JSON', '{"digest": ['],
  ['null', 'null'],
  ['a number', '42'],
  ['a string', '"hello"'],
  ['an array', '[1,2,3]'],
  ['no sender', JSON.stringify({ digest: [] })],
  ['sender not an object', JSON.stringify({ digest: [], sender: 'me' })],
  ['missing sender.id', JSON.stringify({ digest: [], sender: {} })],
  ['non-string sender.id', JSON.stringify({ digest: [], sender: { id: 7 } })],
  ['empty sender.id', JSON.stringify({ digest: [], sender: { id: '' } })],
  ['sender.id that names an Object.prototype property', JSON.stringify({ digest: [], sender: { id: 'constructor' } })],
  ['sender.id __proto__', '{"digest":[],"sender":{"id":"__proto__"}}'],
  ['neither deltas nor digest', JSON.stringify({ sender })],
  ['both deltas and digest', JSON.stringify({ sender, deltas: [], digest: [] })],
  ['digest not an array', JSON.stringify({ sender, digest: 'not-an-array' })],
  ['deltas not an array', JSON.stringify({ sender, deltas: { 0: 1 } })],
  ['digest entry null', JSON.stringify({ sender, digest: [null] })],
  ['digest entry without id', JSON.stringify({ sender, digest: [{ maxVersionSeen: 1 }] })],
  ['digest entry without maxVersionSeen', JSON.stringify({ sender, digest: [{ id: 'x' }] })],
  ['digest maxVersionSeen a string', JSON.stringify({ sender, digest: [{ id: 'x', maxVersionSeen: '1' }] })],
  ['digest maxVersionSeen negative', JSON.stringify({ sender, digest: [{ id: 'x', maxVersionSeen: -1 }] })],
  ['delta not an array', JSON.stringify({ sender, deltas: ['x'] })],
  ['delta too short', JSON.stringify({ sender, deltas: [['x', 'k', 1]] })],
  ['delta too long', JSON.stringify({ sender, deltas: [['x', 'k', 1, 1, 1]] })],
  ['delta peer id a number', JSON.stringify({ sender, deltas: [[1, 'k', 1, 1]] })],
  ['delta peer id toString', JSON.stringify({ sender, deltas: [['toString', 'k', 1, 1]] })],
  ['delta key not a string', JSON.stringify({ sender, deltas: [['x', {}, 1, 1]] })],
  ['delta key __proto__', JSON.stringify({ sender, deltas: [['x', '__proto__', 1, 1]] })],
  ['delta version not an integer', JSON.stringify({ sender, deltas: [['x', 'k', 1, 1.5]] })],
  ['a digest entry with a property gossipmonger would copy into a Peer', JSON.stringify({ sender, digest: [{ id: 'x', maxVersionSeen: 1, data: { k: null } }] })],
  ['an unknown top-level key', JSON.stringify({ sender, digest: [], extra: true })],
  ['sender.transport.port not an integer', JSON.stringify({ sender: { id: 'a', transport: { host: 'h', port: 'p' } }, digest: [] })],
  // Bounds on what one message can add to gossipmonger's state (schema.ts).
  ['a peer id over MAX_ID_LENGTH', JSON.stringify({ sender, digest: [{ id: 'i'.repeat(MAX_ID_LENGTH + 1), maxVersionSeen: 1 }] })],
  ['a host over MAX_HOST_LENGTH', JSON.stringify({ sender: { id: 'a', transport: { host: 'h'.repeat(MAX_HOST_LENGTH + 1), port: 1 } }, digest: [] })],
  ['a digest over MAX_DIGEST_ENTRIES', JSON.stringify({ sender, digest: Array.from({ length: MAX_DIGEST_ENTRIES + 1 }, (_, i) => ({ id: `p${i}`, maxVersionSeen: 1 })) })],
  ['deltas over MAX_DELTAS', JSON.stringify({ sender, deltas: Array.from({ length: MAX_DELTAS + 1 }, () => ['a', 'k', 1, 1]) })],
  ['a transport with an object in it', JSON.stringify({ sender, digest: [{ id: 'x', maxVersionSeen: 1, transport: { host: 'h', port: 1, blob: { a: 1 } } }] })],
  ['a transport with a long extra string', JSON.stringify({ sender, digest: [{ id: 'x', maxVersionSeen: 1, transport: { host: 'h', port: 1, blob: 'b'.repeat(MAX_TRANSPORT_STRING + 1) } }] })],
  ['a transport with too many properties', JSON.stringify({ sender, digest: [{ id: 'x', maxVersionSeen: 1, transport: Object.fromEntries(Array.from({ length: MAX_TRANSPORT_PROPERTIES + 1 }, (_, i) => [`k${i}`, i])) }] })],
  ['a sender with too many properties', JSON.stringify({ sender: Object.fromEntries([['id', 'a'], ...Array.from({ length: MAX_SENDER_PROPERTIES }, (_, i) => [`k${i}`, i])]), digest: [] })]
];

/** A small deterministic PRNG (mulberry32), so a fuzz failure can be replayed from its seed. */
export function prng (seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Messages the transport must accept, as gossipmonger@0.1.10 sends them and at the edges of the schema. */
export const VALID_MESSAGES: unknown[] = [
  { digest: [{ id: 'a', maxVersionSeen: 3, transport: { host: 'localhost', port: 1 } }, { id: 'b', maxVersionSeen: 0 }], sender },
  { deltas: [['a', 'k', { nested: [1, null, 'x'] }, 1], ['b', 'constructor', null, 2]], sender },
  { digest: [], sender: { id: 'x' } },
  { deltas: [], sender: { id: 'x', transport: { host: 'h', port: 65535, extra: 'e'.repeat(MAX_TRANSPORT_STRING), n: null }, more: { a: 1 } } },
  // At each bound, exactly.
  { digest: [{ id: 'i'.repeat(MAX_ID_LENGTH), maxVersionSeen: 1, transport: { host: 'h'.repeat(MAX_HOST_LENGTH), port: 1 } }], sender }
];

/**
 * One fuzz case: random bytes (30%) or a valid frame with 1-3 bytes replaced.
 * Shared by the decoder/schema fuzz and the generated-validator check.
 */
export function fuzzBytes (random: () => number, valid: Buffer): Buffer {
  if (random() < 0.3) {
    return Buffer.from(Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256)));
  }
  const bytes = Buffer.from(valid);
  for (let f = 1 + Math.floor(random() * 3); f > 0; f--) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
  return bytes;
}

const ODD_VALUES: unknown[] = [null, true, 0, -1, 1.5, 65536, '', 'x', '__proto__', 'constructor', [], {}, [1, 2, 3, 4], { id: 'y' }];

/**
 * A parsed message with one value somewhere in it replaced, added or removed:
 * structural mutations that byte flips rarely reach (most of those stop being JSON).
 */
export function mutateValue (random: () => number, value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(value)) as unknown;
  const containers: Array<Record<string, unknown> | unknown[]> = [];
  const walk = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return;
    containers.push(node as Record<string, unknown> | unknown[]);
    for (const child of Object.values(node)) walk(child);
  };
  walk(copy);
  const odd = ODD_VALUES[Math.floor(random() * ODD_VALUES.length)];
  if (containers.length === 0) return odd;
  const target = containers[Math.floor(random() * containers.length)]!;
  const keys = Object.keys(target);
  const roll = random();
  if (roll < 0.2 && keys.length > 0) {
    const key = keys[Math.floor(random() * keys.length)]!;
    if (Array.isArray(target)) target.splice(Number(key), 1);
    else delete target[key];
  } else if (roll < 0.4) {
    if (Array.isArray(target)) target.push(odd);
    else target[['extra', 'id', 'port', 'host', 'digest', 'deltas', 'transport'][Math.floor(random() * 7)]!] = odd;
  } else if (keys.length > 0) {
    const key = keys[Math.floor(random() * keys.length)]!;
    (target as Record<string, unknown>)[key] = odd;
  } else {
    return odd;
  }
  return copy;
}
