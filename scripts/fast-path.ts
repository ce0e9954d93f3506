/**
 * Build step, with generate-validator.ts: compiles the message schema
 * (src/wire/schema.ts) into a fast acceptance check specialised for its
 * shapes, with no error reporting.
 *
 * ajv stays the source of truth. The shipped validator runs this check first
 * and returns "valid" when it says so; for anything else it runs ajv's
 * standalone code, which decides and gives the error. So the check may
 * refuse what ajv accepts (it then only costs time), but must never accept
 * what ajv refuses: every construct below accepts a subset of what its
 * keyword accepts in ajv (draft-07), and the equivalence test
 * (test/unit/generate-validator.test.ts) runs both over every fixture, a
 * fuzz corpus and values built from the schema at each of its limits.
 *
 * Why it is faster than ajv's own code for the same schema, per digest entry
 * and per delta: one `for...in` per object for additionalProperties,
 * maxProperties and propertyNames together, with no key array
 * (`Object.keys(...).length`) and no error bookkeeping; string lengths
 * settled from String#length alone (ajv counts code points); oneOf decided
 * without building the error objects of the branch that fails (ajv builds
 * one for every digest message, then drops it).
 *
 * A keyword it does not know stops the build, naming the keyword and where
 * it is: the check is not allowed to guess what a keyword means.
 */

type Schema = Record<string, unknown>;

/** Keywords the check implements; any other stops the build. */
const KNOWN = new Set([
  '$id', 'type', 'required', 'properties', 'additionalProperties', 'maxProperties', 'propertyNames',
  'items', 'additionalItems', 'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern',
  'minimum', 'maximum', 'enum', 'const', 'not', 'anyOf', 'oneOf', 'maxDepth'
]);

/** Keywords an exact (both-ways) test is built for: the insides of `not` and of `oneOf`'s branches. */
const EXACT = new Set(['type', 'required', 'enum', 'const']);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

class Emitter {
  private next = 0;
  /** Module-level constants (regular expressions, sets), in the order made. */
  readonly constants: string[] = [];

  fresh (prefix: string): string {
    return `${prefix}${this.next++}`;
  }

  private readonly byCode = new Map<string, string>();

  /** A module-level constant for `code`, made once however often it is used. */
  constant (prefix: string, code: string): string {
    let name = this.byCode.get(code);
    if (name === undefined) {
      name = this.fresh(prefix);
      this.byCode.set(code, name);
      this.constants.push(`const ${name} = ${code};`);
    }
    return name;
  }
}

function fail (where: string, what: string): never {
  throw new Error(`fast path: ${what} at ${where || '#'} (teach scripts/fast-path.ts, or the shipped validator cannot be generated)`);
}

function property (object: string, name: string): string {
  return IDENTIFIER.test(name) ? `${object}.${name}` : `${object}[${JSON.stringify(name)}]`;
}

function isPrimitive (value: unknown): value is string | number | boolean | null {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

/** ajv's type tests (draft-07), exactly: also used where a type decides both ways. */
function typeTest (type: unknown, d: string, where: string): string {
  const one = (t: unknown): string => {
    switch (t) {
      case 'object': return `(${d} && typeof ${d} == "object" && !Array.isArray(${d}))`;
      case 'array': return `Array.isArray(${d})`;
      case 'string': return `typeof ${d} == "string"`;
      case 'number': return `(typeof ${d} == "number" && isFinite(${d}))`;
      // ajv tests typeof number, !(d % 1), !isNaN and isFinite: exactly the
      // numbers Number.isInteger accepts (finite, no fraction; -0 included), in one call.
      case 'integer': return `Number.isInteger(${d})`;
      case 'boolean': return `typeof ${d} == "boolean"`;
      case 'null': return `${d} === null`;
      default: return fail(where, `type ${JSON.stringify(t)}`);
    }
  };
  const types = Array.isArray(type) ? type : [type];
  if (types.length === 0) fail(where, 'an empty type list');
  return types.length === 1 ? one(types[0]) : `(${types.map(one).join(' || ')})`;
}

/** The one type `schema.type` names, if it names exactly one. */
function singleType (schema: Schema): string | undefined {
  const type = schema.type;
  if (typeof type === 'string') return type;
  if (Array.isArray(type) && type.length === 1 && typeof type[0] === 'string') return type[0];
  return undefined;
}

/** Equality with one of primitive `values`, as ajv's enum and const test it (===). */
function oneOfValues (values: unknown[], d: string, em: Emitter, where: string): string {
  if (values.length === 0) return 'false';
  if (!values.every(isPrimitive)) fail(where, 'an enum or const that is not a string, number, boolean or null');
  // A chain of === for a short list: measured faster than Set#has for the 12
  // reserved names (3.1 against 3.35 us for a 100-peer digest), since a
  // string of another length is settled without hashing it.
  if (values.length <= 16) return `(${values.map((v) => `${d} === ${JSON.stringify(v)}`).join(' || ')})`;
  // Past that, one hash lookup. A Set compares with SameValueZero, which is
  // === but for NaN (never a JSON value, and not in the list).
  const set = em.constant('values', `new Set(${JSON.stringify(values)})`);
  return `${set}.has(${d})`;
}

/**
 * An expression true exactly when `d` satisfies `schema` (as ajv decides it):
 * for the insides of `not` and `oneOf`, where "refused" must be certain too.
 */
function exact (schema: unknown, d: string, em: Emitter, where: string): string {
  if (schema === true) return 'true';
  if (schema === false) return 'false';
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return fail(where, 'a schema that is not an object');
  const s = schema as Schema;
  const parts: string[] = [];
  for (const keyword of Object.keys(s)) {
    if (!EXACT.has(keyword)) fail(where, `keyword "${keyword}" inside not or oneOf (only ${[...EXACT].join(', ')} are decided exactly)`);
  }
  if (s.type !== undefined) parts.push(typeTest(s.type, d, `${where}/type`));
  if (s.required !== undefined) {
    const names = s.required as unknown;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) fail(`${where}/required`, 'required that is not a list of names');
    // `required` says nothing about a value that is not an object.
    if (names.length > 0) parts.push(`(!(${typeTest('object', d, where)}) || (${names.map((n) => `${property(d, n)} !== undefined`).join(' && ')}))`);
  }
  if (s.enum !== undefined) {
    if (!Array.isArray(s.enum)) fail(`${where}/enum`, 'enum that is not a list');
    parts.push(oneOfValues(s.enum, d, em, `${where}/enum`));
  }
  if ('const' in s) parts.push(oneOfValues([s.const], d, em, `${where}/const`));
  return parts.length === 0 ? 'true' : `(${parts.join(' && ')})`;
}

function nonNegativeInteger (value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail(where, 'a limit that is not a whole number >= 0');
  return value;
}

/**
 * Statements that run `reject` (`return false`, or `break label`) unless `d`
 * certainly satisfies `schema`. `known` is a type the caller has already
 * established for `d`, which saves a repeated test.
 */
function accept (schema: unknown, d: string, reject: string, em: Emitter, where: string, known?: string): string {
  if (schema === true) return '';
  if (schema === false) return `${reject};`;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return fail(where, 'a schema that is not an object');
  const s = schema as Schema;
  for (const keyword of Object.keys(s)) {
    if (!KNOWN.has(keyword)) fail(where, `keyword "${keyword}"`);
    if (keyword === '$id' && where !== '') fail(where, 'a nested $id');
  }
  const out: string[] = [];
  const type = singleType(s) ?? known;
  if (s.type !== undefined && known === undefined) out.push(`if (!(${typeTest(s.type, d, `${where}/type`)})) ${reject};`);
  else if (s.type !== undefined && singleType(s) !== known) fail(`${where}/type`, 'a type the caller did not establish');

  // Tests on the whole value first: they are cheap, and they settle most refusals.
  if (s.enum !== undefined) {
    if (!Array.isArray(s.enum)) fail(`${where}/enum`, 'enum that is not a list');
    out.push(`if (!(${oneOfValues(s.enum, d, em, `${where}/enum`)})) ${reject};`);
  }
  if ('const' in s) out.push(`if (!(${oneOfValues([s.const], d, em, `${where}/const`)})) ${reject};`);
  if (s.not !== undefined) out.push(`if (${exact(s.not, d, em, `${where}/not`)}) ${reject};`);
  if (s.oneOf !== undefined) {
    if (!Array.isArray(s.oneOf) || s.oneOf.length === 0) fail(`${where}/oneOf`, 'oneOf that is not a list of schemas');
    // Exactly one branch: each decided both ways.
    const tests = s.oneOf.map((branch, i) => `(${exact(branch, d, em, `${where}/oneOf/${i}`)} ? 1 : 0)`);
    out.push(`if (${tests.join(' + ')} !== 1) ${reject};`);
  }

  /** Checks that apply to one type only: straight when the type is certain, guarded otherwise. */
  const forType = (t: string, body: string[]): void => {
    if (body.length === 0) return;
    if (type === t) out.push(...body);
    else if (type === undefined || Array.isArray(s.type)) out.push(`if (${typeTest(t, d, where)}) {`, ...body, '}');
    // Another single type: these keywords never apply.
  };

  // Strings. A string of n UTF-16 units has between ceil(n / 2) and n code
  // points (what JSON Schema counts), so n <= max and n >= 2 * min - 1 are
  // sure; anything near a limit with surrogate pairs is left to ajv.
  const strings: string[] = [];
  if (s.maxLength !== undefined) strings.push(`if (${d}.length > ${nonNegativeInteger(s.maxLength, `${where}/maxLength`)}) ${reject};`);
  if (s.minLength !== undefined) {
    const min = nonNegativeInteger(s.minLength, `${where}/minLength`);
    if (min > 0) strings.push(`if (${d}.length < ${2 * min - 1}) ${reject};`);
  }
  if (s.pattern !== undefined) {
    if (typeof s.pattern !== 'string') fail(`${where}/pattern`, 'a pattern that is not a string');
    // ajv's default: Unicode regular expressions.
    const re = em.constant('pattern', `new RegExp(${JSON.stringify(s.pattern)}, "u")`);
    strings.push(`if (!${re}.test(${d})) ${reject};`);
  }
  forType('string', strings);

  // Numbers. NaN and -Infinity fail these comparisons and go to ajv.
  const numbers: string[] = [];
  if (s.minimum !== undefined) {
    if (typeof s.minimum !== 'number') fail(`${where}/minimum`, 'a minimum that is not a number');
    numbers.push(`if (!(${d} >= ${s.minimum})) ${reject};`);
  }
  if (s.maximum !== undefined) {
    if (typeof s.maximum !== 'number') fail(`${where}/maximum`, 'a maximum that is not a number');
    numbers.push(`if (!(${d} <= ${s.maximum})) ${reject};`);
  }
  if (numbers.length > 0) {
    // ajv applies them to finite numbers; on any number the comparison is at least as strict.
    if (type === 'number' || type === 'integer') out.push(...numbers);
    else out.push(`if (typeof ${d} == "number") {`, ...numbers, '}');
  }

  // Arrays.
  const arrays: string[] = [];
  if (s.additionalItems !== undefined && !Array.isArray(s.items)) fail(`${where}/additionalItems`, 'additionalItems without a list of items');
  const hasArrayKeywords = s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined;
  if (hasArrayKeywords) {
    const n = em.fresh('n');
    arrays.push(`const ${n} = ${d}.length;`);
    const minItems = s.minItems === undefined ? 0 : nonNegativeInteger(s.minItems, `${where}/minItems`);
    if (minItems > 0) arrays.push(`if (${n} < ${minItems}) ${reject};`);
    // additionalItems: false is a maxItems of the tuple's length.
    const tupleLength = Array.isArray(s.items) && s.additionalItems === false ? s.items.length : Infinity;
    const maxItems = Math.min(s.maxItems === undefined ? Infinity : nonNegativeInteger(s.maxItems, `${where}/maxItems`), tupleLength);
    if (maxItems !== Infinity) arrays.push(`if (${n} > ${maxItems}) ${reject};`);
    if (Array.isArray(s.items)) {
      const items = s.items as unknown[];
      items.forEach((item, i) => {
        const e = em.fresh('e');
        const body = [`const ${e} = ${d}[${i}];`, accept(item, e, reject, em, `${where}/items/${i}`)];
        // An item past the end is not checked (ajv: `if (length > i)`); minItems may already rule that out.
        if (i < minItems) arrays.push(...body);
        else arrays.push(`if (${n} > ${i}) {`, ...body, '}');
      });
      if (s.additionalItems !== undefined && s.additionalItems !== false && s.additionalItems !== true) {
        const i = em.fresh('i');
        const e = em.fresh('e');
        arrays.push(`for (let ${i} = ${items.length}; ${i} < ${n}; ${i}++) {`, `const ${e} = ${d}[${i}];`, accept(s.additionalItems, e, reject, em, `${where}/additionalItems`), '}');
      }
    } else if (s.items !== undefined && s.items !== true) {
      const i = em.fresh('i');
      const e = em.fresh('e');
      arrays.push(`for (let ${i} = 0; ${i} < ${n}; ${i}++) {`, `const ${e} = ${d}[${i}];`, accept(s.items, e, reject, em, `${where}/items`), '}');
    }
  }
  forType('array', arrays);

  // Objects.
  const objects: string[] = [];
  if (s.required !== undefined) {
    const names = s.required as unknown;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) fail(`${where}/required`, 'required that is not a list of names');
    if (names.length > 0) objects.push(`if (${names.map((n) => `${property(d, n)} === undefined`).join(' || ')}) ${reject};`);
  }
  const props = (s.properties ?? {}) as Record<string, unknown>;
  if (typeof props !== 'object' || props === null || Array.isArray(props)) fail(`${where}/properties`, 'properties that is not an object');
  const names = Object.keys(props);
  const additional = s.additionalProperties;
  const checksAdditional = additional !== undefined && additional !== true;
  const maxProperties = s.maxProperties === undefined ? undefined : nonNegativeInteger(s.maxProperties, `${where}/maxProperties`);
  if (checksAdditional || maxProperties !== undefined || s.propertyNames !== undefined) {
    // One pass over the keys for all three. for...in visits what ajv's
    // additionalProperties loop visits (the same construct); it also visits
    // inherited enumerable keys, so its count is at least Object.keys' and
    // a count within maxProperties is within it for ajv too.
    const k = em.fresh('k');
    const count = maxProperties === undefined ? undefined : em.fresh('count');
    if (count !== undefined) objects.push(`let ${count} = 0;`);
    objects.push(`for (const ${k} in ${d}) {`);
    if (count !== undefined) objects.push(`if (++${count} > ${maxProperties}) ${reject};`);
    if (s.propertyNames !== undefined) objects.push(accept(s.propertyNames, k, reject, em, `${where}/propertyNames`, 'string'));
    if (checksAdditional) {
      const unknownKey = names.length === 0 ? 'true' : names.map((name) => `${k} !== ${JSON.stringify(name)}`).join(' && ');
      if (additional === false) objects.push(`if (${unknownKey}) ${reject};`);
      else {
        const e = em.fresh('e');
        const body = accept(additional, e, reject, em, `${where}/additionalProperties`);
        if (body !== '') objects.push(`if (${unknownKey}) {`, `const ${e} = ${d}[${k}];`, body, '}');
      }
    }
    objects.push('}');
  }
  // Known properties are read by name, as ajv reads them (a value that is
  // present but not enumerable is checked all the same).
  for (const name of names) {
    const e = em.fresh('e');
    const body = accept(props[name], e, reject, em, `${where}/properties/${name}`);
    if (body !== '') objects.push(`const ${e} = ${property(d, name)};`, `if (${e} !== undefined) {`, body, '}');
  }
  forType('object', objects);

  if (s.maxDepth !== undefined) {
    const max = nonNegativeInteger(s.maxDepth, `${where}/maxDepth`);
    // The walk only for arrays and objects: a scalar nests no deeper than 1.
    out.push(`if (typeof ${d} == "object" && ${d} !== null && nestsDeeperThan(${d}, ${max})) ${reject};`);
  }
  if (s.anyOf !== undefined) {
    if (!Array.isArray(s.anyOf) || s.anyOf.length === 0) fail(`${where}/anyOf`, 'anyOf that is not a list of schemas');
    // One labelled block per branch: a branch that is not sure breaks out to try the next.
    const done = em.fresh('anyOf');
    out.push(`${done}: {`);
    s.anyOf.forEach((branch, i) => {
      const label = em.fresh('branch');
      out.push(`${label}: {`, accept(branch, d, `break ${label}`, em, `${where}/anyOf/${i}`), `break ${done};`, '}');
    });
    out.push(`${reject};`, '}');
  }
  return out.filter((line) => line !== '').join('\n');
}

/**
 * JavaScript source defining `function <name> (data)`, true only for values
 * that satisfy `schema`, plus the constants it uses. It expects
 * `nestsDeeperThan` (src/wire/schema.ts) in scope when the schema uses maxDepth.
 */
export function fastPathSource (schema: unknown, name: string): string {
  const em = new Emitter();
  const body = accept(schema, 'data', 'return false', em, '');
  return [...em.constants, `function ${name} (data) {`, body, 'return true;', '}'].join('\n');
}
