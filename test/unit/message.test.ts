import { expect } from 'chai';
import { InvalidMessageError } from '../../src/errors';
import { MAX_VALUE_DEPTH, jsonCostOver, messageSchema, nestsDeeperThan, parseMessage, RESERVED_NAMES } from '../../src/wire/message';
import { MAX_DIGEST_ENTRIES, MAX_JSON_PROPERTIES, MAX_JSON_TOKENS } from '../../src/wire/schema';
import { FrameDecoder, FrameOverflow } from '../../src/inbound/frame-decoder';
import { INVALID_MESSAGES, fuzzBytes, prng, sender } from '../support/fixtures';


function parse (value: unknown): unknown {
  return parseMessage(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)));
}


describe('message', () => {
  describe('parseMessage', () => {
    describe('token budget', () => {
      /** Calls to JSON.parse while `fn` runs. */
      function parsesDuring (fn: () => void): number {
        const original = JSON.parse;
        let calls = 0;
        JSON.parse = function (this: unknown, ...args: Parameters<typeof JSON.parse>) { calls++; return original.apply(this, args); } as typeof JSON.parse;
        try {
          fn();
        } finally {
          JSON.parse = original;
        }
        return calls;
      }

      it('refuses a frame built for cost (a sender with 90,000 keys) before parsing it', () => {
        const costly = JSON.stringify({ digest: [], sender: { id: 'a', ...Object.fromEntries(Array.from({ length: 90000 }, (_, i) => [`k${i}`, 0])) } });
        const calls = parsesDuring(() => expect(() => parse(costly)).to.throw(InvalidMessageError, /properties; refused before parsing/));
        expect(calls, 'JSON.parse calls').to.equal(0);
      });

      it('refuses an object of distinct keys deep in a delta value, past MAX_JSON_PROPERTIES, before parsing it', () => {
        const value = Object.fromEntries(Array.from({ length: MAX_JSON_PROPERTIES + 1 }, (_, i) => [`key-${i}`, 1]));
        const frame = Buffer.from(JSON.stringify({ deltas: [['a', 'k', value, 1]], sender }));
        expect(parsesDuring(() => expect(() => parseMessage(frame)).to.throw(InvalidMessageError, /properties/))).to.equal(0);
      });

      it('refuses a frame of many small values, deep in a delta, before parsing it', () => {
        const frame = Buffer.from(JSON.stringify({ deltas: [['a', 'k', new Array(MAX_JSON_TOKENS + 1).fill(0), 1]], sender }));
        expect(parsesDuring(() => expect(() => parseMessage(frame)).to.throw(InvalidMessageError, /tokens/))).to.equal(0);
      });

      it(`lets through the largest digest (${MAX_DIGEST_ENTRIES} entries as gossipmonger builds them), and a 1 MiB string`, () => {
        const digest = Array.from({ length: MAX_DIGEST_ENTRIES }, (_, i) => ({ id: `6f1c3a2e-8d4b-4c1a-9e2f-${String(i).padStart(12, '0')}`, maxVersionSeen: 1000000 + i, transport: { host: `node-${i}.gossip.example.internal`, port: 9742 } }));
        expect(parse({ digest, sender })).to.have.property('digest').with.length(MAX_DIGEST_ENTRIES);
        expect(parse({ deltas: [['a', 'k', 'x'.repeat(1024 * 1024 - 100), 1]], sender })).to.have.property('deltas');
      });

      it('counts tokens outside strings only, escapes included, and properties as colons', () => {
        // { : , : [ , = 6 tokens, 2 properties
        expect(jsonCostOver(Buffer.from('{"a":1,"b":[2,3]}'), 6, 2)).to.equal(undefined);
        expect(jsonCostOver(Buffer.from('{"a":1,"b":[2,3]}'), 5, 2)).to.equal('tokens');
        expect(jsonCostOver(Buffer.from('{"a":1,"b":[2,3]}'), 6, 1)).to.equal('properties');
        expect(jsonCostOver(Buffer.from(JSON.stringify({ s: ',:{['.repeat(100) + '\\"' + ',,,' })), 2, 1)).to.equal(undefined);
        const text = JSON.stringify({ deltas: [['a', 'k', ',,,,,:::::{{{{[[[['.repeat(10000), 1]], sender });
        expect(parse(text)).to.have.property('deltas');
      });

      it('never counts a frame under 32 KiB past a budget (the count is skipped there)', () => {
        const tokens = Buffer.from('[' + '0,'.repeat(16 * 1024 - 2) + '0]');
        const properties = Buffer.from('{' + Array.from({ length: 6000 }, (_, i) => `"${i % 10}":0`).join(',').slice(0, 32 * 1024 - 2) + '}');
        expect(tokens.length).to.be.at.most(32 * 1024);
        expect(jsonCostOver(tokens, MAX_JSON_TOKENS, MAX_JSON_PROPERTIES)).to.equal(undefined);
        expect(jsonCostOver(properties, MAX_JSON_TOKENS, MAX_JSON_PROPERTIES)).to.equal(undefined);
      });
    });

    it('counts tokens the same whether the frame is sparse (the indexOf bound) or dense (the byte loop)', () => {
      // The definition, byte by byte, to compare with.
      const reference = (bytes: Buffer, maxTokens: number, maxProperties: number): 'tokens' | 'properties' | undefined => {
        let tokens = 0;
        let properties = 0;
        let inString = false;
        for (let i = 0; i < bytes.length; i++) {
          const c = bytes[i]!;
          if (inString) {
            if (c === 0x5c) i++;
            else if (c === 0x22) inString = false;
          } else if (c === 0x22) inString = true;
          else if (c === 0x2c || c === 0x3a || c === 0x7b || c === 0x5b) {
            if (++tokens > maxTokens) return 'tokens';
            if (c === 0x3a && ++properties > maxProperties) return 'properties';
          }
        }
        return undefined;
      };
      const random = prng(Number(process.env.FUZZ_SEED ?? 7));
      const alphabet = Buffer.from('xxxxxxxxxxxxxxxx,:{["\\');
      let over = 0;
      for (let n = 0; n < 200; n++) {
        // From a few token bytes in 64 KB to one in two.
        const density = random() < 0.5 ? 0.0005 : random() / 2;
        const bytes = Buffer.alloc(256 + Math.floor(random() * 70000), 0x78);
        for (let k = Math.floor(density * bytes.length); k > 0; k--) bytes[Math.floor(random() * bytes.length)] = alphabet[16 + Math.floor(random() * 7)]!;
        const maxTokens = Math.floor(random() * 2 * density * bytes.length) + 1;
        const maxProperties = Math.floor(random() * maxTokens / 2) + 1;
        const expected = reference(bytes, maxTokens, maxProperties);
        if (expected !== undefined) over++;
        expect(jsonCostOver(bytes, maxTokens, maxProperties), `case ${n}`).to.equal(expected);
        expect(jsonCostOver(new Uint8Array(bytes), maxTokens, maxProperties), `case ${n} as Uint8Array`).to.equal(expected);
      }
      expect(over).to.be.within(10, 190);
    });

    it('accepts a digest as gossipmonger@0.1.10 sends it', () => {
      const message = { digest: [{ id: 'a', maxVersionSeen: 3, transport: { host: 'localhost', port: 1 } }, { id: 'b', maxVersionSeen: 0 }], sender };
      expect(parse(message)).to.deep.equal(message);
    });

    it('accepts deltas with any JSON value, as gossipmonger@0.1.10 sends them', () => {
      const message = { deltas: [['a', 'k', { nested: [1, null, 'x'] }, 1], ['b', 'constructor', null, 2]], sender };
      expect(parse(message)).to.deep.equal(message);
    });

    it('accepts a sender without transport and an empty digest', () => {
      expect(parse({ digest: [], sender: { id: 'x' } })).to.deep.equal({ digest: [], sender: { id: 'x' } });
    });

    for (const [name, text] of INVALID_MESSAGES) {
      it(`refuses ${name} with ERR_INVALID_MESSAGE`, () => {
        expect(() => parse(text)).to.throw(InvalidMessageError).with.property('code', 'ERR_INVALID_MESSAGE');
      });
    }

    it(`refuses a value nested deeper than ${MAX_VALUE_DEPTH} levels, which could not be sent on`, () => {
      const deep = (n: number): unknown => { let v: unknown = 0; for (let i = 0; i < n; i++) v = [v]; return v; };
      expect(parse({ deltas: [['a', 'k', deep(MAX_VALUE_DEPTH), 1]], sender })).to.have.property('deltas');
      expect(() => parse({ deltas: [['a', 'k', deep(MAX_VALUE_DEPTH + 1), 1]], sender })).to.throw(InvalidMessageError, /maxDepth/);
      expect(() => parse({ digest: [], sender: { id: 'a', extra: deep(MAX_VALUE_DEPTH + 1) } })).to.throw(InvalidMessageError, /maxDepth/);
      // 20,000 levels (under the token budget) parse, but JSON.stringify could never send them on.
      const text = `{"deltas":[["a","k",${'['.repeat(20000)}${']'.repeat(20000)},1]],"sender":{"id":"a"}}`;
      expect(() => parse(text)).to.throw(InvalidMessageError, /maxDepth/);
    });

    it('measures depth on the parsed value, so brackets inside strings do not count', () => {
      expect(nestsDeeperThan(JSON.parse(JSON.stringify({ s: '[[[[[["\\"[[[[' })), 1)).to.equal(false);
      expect(nestsDeeperThan({ a: [{ b: [] }] }, 3)).to.equal(true);
      expect(nestsDeeperThan({ a: [{ b: [] }] }, 4)).to.equal(false);
    });

    it('refuses bytes that are not UTF-8', () => {
      const bytes = Buffer.concat([Buffer.from('{"digest":[],"sender":{"id":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]);
      expect(() => parseMessage(bytes)).to.throw(InvalidMessageError).with.property('message').that.match(/UTF-8/);
    });
  });

  describe('fuzz (no sockets)', () => {
    it('decodes and parses 20,000 seeded random and mutated streams with nothing thrown but coded errors', () => {
      const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
      const random = prng(seed);
      const valid = Buffer.from(JSON.stringify({ digest: [{ id: 'a', maxVersionSeen: 2, transport: { host: 'h', port: 1 } }], sender }) + '\r\n');
      let delivered = 0;
      let refused = 0;
      for (let n = 0; n < 20000; n++) {
        const bytes = fuzzBytes(random, valid);
        const decoder = new FrameDecoder(256);
        try {
          let at = 0;
          const frames: Buffer[] = [];
          while (at < bytes.length) {
            const step = 1 + Math.floor(random() * 40);
            frames.push(...decoder.push(bytes.subarray(at, at + step)));
            at += step;
          }
          const last = decoder.end();
          if (last) frames.push(last);
          for (const frame of frames) {
            const message = parseMessage(frame);
            // Whatever passes has the shape gossipmonger relies on.
            expect(message.sender.id, `seed ${seed}`).to.be.a('string');
            expect(Array.isArray(message.deltas ?? message.digest), `seed ${seed}`).to.equal(true);
            delivered++;
          }
        } catch (error) {
          if (!(error instanceof InvalidMessageError) && !(error instanceof FrameOverflow)) {
            throw new Error(`FUZZ_SEED=${seed}: case ${n} threw ${String(error)}`);
          }
          refused++;
        }
      }
      expect(delivered, 'some mutations stay valid').to.be.above(0);
      expect(refused, 'most are refused').to.be.above(10000);
    });
  });

  describe('messageSchema', () => {
    it('is exported for users to read, and lists the reserved names', () => {
      expect(messageSchema.required).to.deep.equal(['sender']);
      expect(RESERVED_NAMES).to.include('__proto__').and.to.include('constructor');
    });
  });
});
