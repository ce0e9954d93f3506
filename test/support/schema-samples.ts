/**
 * Values built from a JSON schema, at each of its limits: for every place in
 * a valid message where the schema says something, the message with that
 * place set to values just inside and just outside each keyword's limit, of
 * every JSON type, and with properties and items removed and added. Used to
 * hold the generated validator's specialised check to ajv's answers on every
 * shape the schema describes (test/unit/generate-validator.test.ts), so the
 * corpus grows with the schema rather than with a list kept by hand.
 */

type Schema = Record<string, unknown>;
type Path = Array<string | number>;

/** Every type, and the values near the edges of JavaScript numbers and strings. */
const SCALARS: unknown[] = [null, true, false, 0, -0, 1, -1, 1.5, -1.5, 2 ** 53, Number.MAX_VALUE, Infinity, -Infinity, NaN, '', 'x', '0', ' ', [], {}, [null], { a: null }];

/** Strings with `units` UTF-16 units, made of ASCII, astral-plane pairs, lone surrogates, or a mix. */
function stringsOf (units: number): string[] {
  if (units < 0) return [];
  const pair = '\u{1F600}';
  return [
    'a'.repeat(units),
    pair.repeat(units >> 1) + 'a'.repeat(units & 1),
    'a'.repeat(units >> 1) + pair.repeat((units - (units >> 1)) >> 1) + 'b'.repeat((units - (units >> 1)) & 1),
    '\uD83D'.repeat(units),
    'a'.repeat(Math.min(units, 1)) + '\uDE00'.repeat(Math.max(0, units - 1))
  ];
}

/** Strings around a length limit counted in code points: the limit, one off, and twice as many units. */
function stringsNear (limit: number): string[] {
  const units = new Set([limit - 1, limit, limit + 1, 2 * limit - 2, 2 * limit - 1, 2 * limit, 2 * limit + 1, 2 * limit + 2]);
  return [...units].flatMap(stringsOf);
}

/** Strings to try a pattern with: digits of each length, and the usual near misses. */
const PATTERN_PROBES: string[] = [
  ...Array.from({ length: 8 }, (_, n) => '1'.repeat(n)),
  '0', '00000', '65535', '65536', '99999', '123456', '-1', '+1', '1.5', '1e3', ' 1', '1 ', '1\n', '\n1', 'a1', '1a',
  '\u0661', '\uFF11', '\u{1D7CF}'
];

/** Arrays and objects nested exactly `depth` deep (a scalar is depth 0 here, [] depth 1). */
function nested (depth: number): unknown[] {
  let array: unknown = 1;
  let object: unknown = 1;
  let mixed: unknown = 'x';
  for (let i = 0; i < depth; i++) {
    array = [array];
    object = { k: object };
    mixed = i % 2 === 0 ? [0, mixed] : { a: 0, b: mixed };
  }
  return [array, object, mixed];
}

/** Values worth trying where `schema` applies, from each of its keywords. */
export function samplesFor (schema: unknown): unknown[] {
  if (typeof schema !== 'object' || schema === null) return SCALARS;
  const s = schema as Schema;
  const out: unknown[] = [...SCALARS];
  for (const key of ['minLength', 'maxLength'] as const) if (typeof s[key] === 'number') out.push(...stringsNear(s[key]));
  if (typeof s.minimum === 'number') out.push(s.minimum - 1, s.minimum - 0.5, s.minimum, s.minimum + 0.5);
  if (typeof s.maximum === 'number') out.push(s.maximum - 0.5, s.maximum, s.maximum + 0.5, s.maximum + 1);
  if (typeof s.pattern === 'string') out.push(...PATTERN_PROBES);
  if (typeof s.maxDepth === 'number') for (const depth of [s.maxDepth - 1, s.maxDepth, s.maxDepth + 1]) out.push(...nested(depth));
  const listed = [...(Array.isArray(s.enum) ? s.enum : []), ...('const' in s ? [s.const] : [])];
  for (const value of listed) {
    out.push(value);
    if (typeof value === 'string') out.push(`${value}x`, value.slice(1), value.toUpperCase(), ` ${value}`);
  }
  for (const key of ['not', 'propertyNames', 'additionalProperties', 'items', 'additionalItems'] as const) {
    const inner = s[key];
    if (typeof inner === 'object' && inner !== null && !Array.isArray(inner)) out.push(...samplesFor(inner).filter((v) => !SCALARS.includes(v)));
  }
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = s[key];
    if (Array.isArray(branches)) for (const branch of branches) out.push(...samplesFor(branch).filter((v) => !SCALARS.includes(v)));
  }
  return out;
}

/** Property names to add where a schema allows or forbids extra ones. */
function extraNames (s: Schema): string[] {
  const names = ['extra', '__proto__', 'constructor', 'toString', 'hasOwnProperty'];
  const limit = (s.propertyNames as Schema | undefined)?.maxLength;
  if (typeof limit === 'number') names.push(...stringsNear(limit).filter((_, i) => i % 3 === 0));
  return names;
}

const EXTRA_VALUES: unknown[] = [null, 1, 1.5, 'x', true, {}, [], 'y'.repeat(65)];

interface Variant {
  path: Path;
  /** Set the place to `value`, or delete it (from an object, or splice it out of an array). */
  remove: boolean;
  value?: unknown;
}

/** The sub-schema for property `name` of an object schema, or undefined when it says nothing. */
function propertySchema (s: Schema, name: string): unknown {
  const props = s.properties as Schema | undefined;
  if (props !== undefined && Object.prototype.hasOwnProperty.call(props, name)) return props[name];
  return s.additionalProperties;
}

function * variants (schema: unknown, value: unknown, path: Path): Generator<Variant> {
  for (const sample of samplesFor(schema)) yield { path, remove: false, value: sample };
  if (typeof schema !== 'object' || schema === null) return;
  const s = schema as Schema;
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(s[key])) for (const branch of s[key] as unknown[]) yield * variants(branch, value, path);
  }
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    // Each item with its own schema; the list one shorter, one longer, and at its length limits.
    const items = s.items;
    for (let i = 0; i < value.length; i++) {
      const itemSchema = Array.isArray(items) ? items[i] : items;
      yield { path: [...path, i], remove: true };
      yield * variants(itemSchema, value[i], [...path, i]);
    }
    const last = value[value.length - 1];
    yield { path, remove: false, value: [...value, last] };
    yield { path, remove: false, value: [...value, ...SCALARS.slice(0, 3)] };
    if (Array.isArray(items)) for (const sample of SCALARS) yield { path: [...path, items.length], remove: false, value: sample };
    for (const key of ['minItems', 'maxItems'] as const) {
      const limit = s[key];
      if (typeof limit === 'number' && value.length > 0) {
        for (const n of [limit - 1, limit, limit + 1]) if (n >= 0) yield { path, remove: false, value: Array.from({ length: n }, (_, i) => value[i % value.length]) };
      }
    }
    return;
  }
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    yield { path: [...path, key], remove: true };
    yield * variants(propertySchema(s, key), object[key], [...path, key]);
  }
  // Properties the schema names that this value lacks, each with every sample.
  const props = (s.properties ?? {}) as Schema;
  for (const name of Object.keys(props)) {
    if (!(name in object)) for (const sample of samplesFor(props[name])) yield { path: [...path, name], remove: false, value: sample };
  }
  for (const name of extraNames(s)) for (const extra of EXTRA_VALUES) yield { path: [...path, name], remove: false, value: extra };
  if (typeof s.maxProperties === 'number') {
    const have = Object.keys(object).length;
    for (const n of [s.maxProperties - 1, s.maxProperties, s.maxProperties + 1]) {
      if (n <= have) continue;
      const filled: Record<string, unknown> = { ...object };
      for (let i = 0; Object.keys(filled).length < n; i++) filled[`p${i}`] = i;
      yield { path, remove: false, value: filled };
    }
  }
}

/** A copy of `base` with the variant applied; a property is defined as JSON.parse defines it (`__proto__` included). */
function apply (base: unknown, variant: Variant): unknown {
  if (variant.path.length === 0) return variant.value;
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let node = copy;
  for (const key of variant.path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = variant.path[variant.path.length - 1]!;
  if (variant.remove) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else {
    Object.defineProperty(node, last, { value: variant.value, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/**
 * Messages derived from each valid `base` by one change at one place the
 * schema describes (`base` should hold every optional part, so that every
 * place is reached).
 */
export function * schemaCases (schema: unknown, bases: unknown[]): Generator<{ what: string; value: unknown }> {
  for (const base of bases) {
    for (const variant of variants(schema, base, [])) {
      const what = `${variant.remove ? 'without' : 'set'} /${variant.path.join('/')}`;
      yield { what, value: apply(base, variant) };
    }
  }
}
