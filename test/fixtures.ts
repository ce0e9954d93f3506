/** Messages shared by the schema unit tests and the transport suite. */

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
  ['sender.transport.port not an integer', JSON.stringify({ sender: { id: 'a', transport: { host: 'h', port: 'p' } }, digest: [] })]
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
