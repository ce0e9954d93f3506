import { expect } from 'chai';
import { InvalidMessageError } from '../src/errors';
import { MAX_VALUE_DEPTH, jsonTokensOver, messageSchema, nestsDeeperThan, parseMessage, RESERVED_NAMES } from '../src/message';
import { MAX_DIGEST_ENTRIES, MAX_JSON_TOKENS } from '../src/schema';
import { FrameDecoder, FrameOverflow } from '../src/frame-decoder';
import { INVALID_MESSAGES, fuzzBytes, prng, sender } from './fixtures';


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

      it('refuses a frame built for cost (a sender with 95,000 keys) before parsing it', () => {
        const costly = JSON.stringify({ digest: [], sender: { id: 'a', ...Object.fromEntries(Array.from({ length: 95000 }, (_, i) => [`k${i}`, 0])) } });
        const calls = parsesDuring(() => expect(() => parse(costly)).to.throw(InvalidMessageError, /tokens/));
        expect(calls, 'JSON.parse calls').to.equal(0);
      });

      it('refuses a frame of many small values, deep in a delta, before parsing it', () => {
        const frame = Buffer.from(JSON.stringify({ deltas: [['a', 'k', new Array(MAX_JSON_TOKENS + 1).fill(0), 1]], sender }));
        expect(parsesDuring(() => expect(() => parseMessage(frame)).to.throw(InvalidMessageError, /tokens/))).to.equal(0);
      });

      it(`lets through the largest digest (${MAX_DIGEST_ENTRIES} entries as gossipmonger builds them)`, () => {
        const digest = Array.from({ length: MAX_DIGEST_ENTRIES }, (_, i) => ({ id: `peer-${i}`, maxVersionSeen: i, transport: { host: `10.0.${i >> 8}.${i & 255}`, port: 9742 } }));
        expect(parse({ digest, sender })).to.have.property('digest').with.length(MAX_DIGEST_ENTRIES);
      });

      it('counts tokens outside strings only, escapes included', () => {
        // { : , : [ , = 6
        expect(jsonTokensOver(Buffer.from('{"a":1,"b":[2,3]}'), 6)).to.equal(false);
        expect(jsonTokensOver(Buffer.from('{"a":1,"b":[2,3]}'), 5)).to.equal(true);
        expect(jsonTokensOver(Buffer.from(JSON.stringify({ s: ',:{['.repeat(100) + '\\"' + ',,,' }) ), 2)).to.equal(false);
        const text = JSON.stringify({ deltas: [['a', 'k', ',,,,,:::::{{{{[[[['.repeat(10000), 1]], sender });
        expect(parse(text)).to.have.property('deltas');
      });
    });

    it('counts tokens the same whether the frame is sparse (the indexOf bound) or dense (the byte loop)', () => {
      // The definition, byte by byte, to compare with.
      const reference = (bytes: Buffer, max: number): boolean => {
        let tokens = 0;
        let inString = false;
        for (let i = 0; i < bytes.length; i++) {
          const c = bytes[i]!;
          if (inString) {
            if (c === 0x5c) i++;
            else if (c === 0x22) inString = false;
          } else if (c === 0x22) inString = true;
          else if ((c === 0x2c || c === 0x3a || c === 0x7b || c === 0x5b) && ++tokens > max) return true;
        }
        return false;
      };
      const random = prng(Number(process.env.FUZZ_SEED ?? 7));
      const alphabet = Buffer.from('xxxxxxxxxxxxxxxx,:{["\\');
      let over = 0;
      for (let n = 0; n < 200; n++) {
        // From a few token bytes in 64 KB to one in two.
        const density = random() < 0.5 ? 0.0005 : random() / 2;
        const bytes = Buffer.alloc(256 + Math.floor(random() * 70000), 0x78);
        for (let k = Math.floor(density * bytes.length); k > 0; k--) bytes[Math.floor(random() * bytes.length)] = alphabet[16 + Math.floor(random() * 7)]!;
        const max = Math.floor(random() * 2 * density * bytes.length) + 1;
        const expected = reference(bytes, max);
        if (expected) over++;
        expect(jsonTokensOver(bytes, max), `case ${n}`).to.equal(expected);
        expect(jsonTokensOver(new Uint8Array(bytes), max), `case ${n} as Uint8Array`).to.equal(expected);
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
