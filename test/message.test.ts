import { expect } from 'chai';
import { InvalidMessageError } from '../src/errors';
import { MAX_VALUE_DEPTH, messageSchema, nestsDeeperThan, parseMessage, RESERVED_NAMES } from '../src/message';
import { FrameDecoder, FrameOverflow } from '../src/frame-decoder';
import { INVALID_MESSAGES, fuzzBytes, prng, sender } from './fixtures';


function parse (value: unknown): unknown {
  return parseMessage(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)));
}


describe('message', () => {
  describe('parseMessage', () => {
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
      expect(() => parse({ digest: [], sender: { id: 'a', transport: { host: 'h', more: deep(MAX_VALUE_DEPTH + 1) } } })).to.throw(InvalidMessageError, /maxDepth/);
      expect(() => parse({ digest: [], sender: { id: 'a', extra: deep(MAX_VALUE_DEPTH + 1) } })).to.throw(InvalidMessageError, /maxDepth/);
      // 100,000 levels parse, but JSON.stringify could never send them on.
      const text = `{"deltas":[["a","k",${'['.repeat(100000)}${']'.repeat(100000)},1]],"sender":{"id":"a"}}`;
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
