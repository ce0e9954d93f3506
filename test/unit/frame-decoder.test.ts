import { expect } from 'chai';
import { FrameDecoder, FrameOverflow } from '../../src/inbound/frame-decoder';
import { exposeGc } from '../support/helpers';

/** Feeds `bytes` split at the given offsets; returns the frames as strings. */
function decode (bytes: Buffer, cuts: number[], max = Infinity): string[] {
  const decoder = new FrameDecoder(max);
  const frames: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    frames.push(...decoder.push(bytes.subarray(from, cut)));
    from = cut;
  }
  const last = decoder.end();
  if (last) frames.push(last);
  return frames.map((f) => f.toString('utf8'));
}

describe('FrameDecoder', () => {
  describe('#push', () => {
    it('returns frames terminated by "\\r\\n" or "\\n", without the terminator', () => {
      expect(decode(Buffer.from('{"a":1}\r\n{"b":2}\n'), [])).to.deep.equal(['{"a":1}', '{"b":2}']);
    });

    it('skips empty lines', () => {
      expect(decode(Buffer.from('\r\n\n{"a":1}\r\n\r\n'), [])).to.deep.equal(['{"a":1}']);
    });

    it('gives the same frames for every single split point, mid-CRLF and mid-character included', () => {
      const text = '{"k":"日本語"}\r\n{"e":"😀 ok"}\n{"last":"ü"}';
      const bytes = Buffer.from(text);
      const expected = ['{"k":"日本語"}', '{"e":"😀 ok"}', '{"last":"ü"}'];
      for (let i = 0; i <= bytes.length; i++) {
        expect(decode(bytes, [i]), `split at ${i}`).to.deep.equal(expected);
      }
    });

    it('gives the same frames for every pair of split points', () => {
      const bytes = Buffer.from('{"x":"é"}\r\n{"y":"😀"}\r\n');
      const expected = ['{"x":"é"}', '{"y":"😀"}'];
      for (let i = 0; i <= bytes.length; i++) {
        for (let j = i; j <= bytes.length; j++) {
          expect(decode(bytes, [i, j]), `splits ${i},${j}`).to.deep.equal(expected);
        }
      }
    });

    it('reassembles a frame fed one byte at a time', () => {
      const bytes = Buffer.from('{"cjk":"漢字","emoji":"👍🏽"}\r\n');
      const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      expect(decode(bytes, cuts)).to.deep.equal(['{"cjk":"漢字","emoji":"👍🏽"}']);
    });
  });

  describe('maxFrameSize', () => {
    const max = 16;
    const exact = 'x'.repeat(max);

    it('accepts a frame of exactly the limit, with either terminator, in any split', () => {
      for (const term of ['\n', '\r\n']) {
        const bytes = Buffer.from(exact + term);
        for (let i = 0; i <= bytes.length; i++) expect(decode(bytes, [i], max)).to.deep.equal([exact]);
      }
    });

    it('refuses a frame one byte over the limit, terminated or not', () => {
      expect(() => decode(Buffer.from(exact + 'y\r\n'), [], max)).to.throw(FrameOverflow);
      expect(() => decode(Buffer.from(exact + 'y'), [], max)).to.throw(FrameOverflow);
      expect(() => decode(Buffer.from(exact + 'y\r\n'), [5], max)).to.throw(FrameOverflow);
    });

    it('refuses an unfinished frame as soon as it passes the limit, holding at most the limit', () => {
      const decoder = new FrameDecoder(max);
      decoder.push(Buffer.from('x'.repeat(10)));
      expect(decoder.buffered).to.equal(10);
      expect(() => decoder.push(Buffer.from('x'.repeat(7)))).to.throw(FrameOverflow);
      expect(decoder.buffered).to.equal(0);
    });

    it('keeps one byte of slack only for a "\\r" that may start the terminator', () => {
      const decoder = new FrameDecoder(max);
      expect(decoder.push(Buffer.from(exact + '\r'))).to.deep.equal([]);
      expect(decoder.push(Buffer.from('\n')).map(String)).to.deep.equal([exact]);
      expect(() => new FrameDecoder(max).push(Buffer.from(exact + 'z'))).to.throw(FrameOverflow);
    });

    it('refuses a stream far beyond the limit without ever holding more than the limit', () => {
      const decoder = new FrameDecoder(1024);
      const chunk = Buffer.alloc(100, 0x61);
      let thrown = false;
      for (let i = 0; i < 1000 && !thrown; i++) {
        try {
          decoder.push(chunk);
          expect(decoder.buffered).to.be.at.most(1024);
        } catch (error) {
          expect(error).to.be.instanceOf(FrameOverflow);
          thrown = true;
        }
      }
      expect(thrown).to.equal(true);
    });

    it('has no limit when maxFrameSize is Infinity', () => {
      const big = 'z'.repeat(100000);
      expect(decode(Buffer.from(big + '\n'), [1, 50000])).to.deep.equal([big]);
    });
  });

  describe('#end', () => {
    it('returns the last unterminated frame, dropping a trailing "\\r"', () => {
      expect(decode(Buffer.from('{"a":1}\r'), [])).to.deep.equal(['{"a":1}']);
    });

    it('returns null when nothing is pending', () => {
      const decoder = new FrameDecoder();
      decoder.push(Buffer.from('{}\n'));
      expect(decoder.end()).to.equal(null);
    });

    it('copies a tail instead of keeping the socket chunk it came in', () => {
      const decoder = new FrameDecoder();
      const chunk = Buffer.from('{"a":1}\n{"b"');
      decoder.push(chunk);
      chunk.fill(0x20);
      expect(decoder.end()!.toString()).to.equal('{"b"');
    });
  });
});

describe('FrameDecoder memory', () => {
  it('holds an unfinished frame fed one byte at a time in one buffer of at most the limit', () => {
    const max = 64 * 1024;
    const decoder = new FrameDecoder(max);
    const frame = Buffer.alloc(max, 0x61);
    let grown = 0;
    let last = 0;
    for (let i = 0; i < frame.length; i++) {
      decoder.push(frame.subarray(i, i + 1));
      if (decoder.capacity !== last) {
        grown++;
        last = decoder.capacity;
      }
      if (decoder.capacity > max + 1) throw new Error(`capacity ${decoder.capacity} past the limit at byte ${i}`);
    }
    expect(decoder.buffered).to.equal(max);
    // Amortised doubling: a handful of allocations, not one per byte.
    expect(grown).to.be.at.most(Math.ceil(Math.log2(max / 256)) + 2);
    expect(decoder.push(Buffer.from('\r\n')).map((f) => f.length)).to.deep.equal([max]);
    expect(decoder.capacity).to.equal(0);
  });

  it('does not keep the chunks it was fed: memory is O(maxFrameSize) whatever the chunking', () => {
    const max = 1024 * 1024;
    const decoders = Array.from({ length: 4 }, () => new FrameDecoder(max));
    const gc = exposeGc();
    gc();
    const before = process.memoryUsage();
    // 4 x 256 KiB of frame in one-byte chunks, each chunk its own allocation.
    for (let i = 0; i < 256 * 1024; i++) {
      for (const decoder of decoders) decoder.push(Buffer.from([0x61]));
    }
    gc();
    const after = process.memoryUsage();
    for (const decoder of decoders) {
      expect(decoder.buffered).to.equal(256 * 1024);
      expect(decoder.capacity).to.be.at.most(max + 1);
    }
    // One Buffer per chunk would keep 1 Mi Buffer objects (over 100 MiB of heap);
    // the growable buffers hold 4 x 256 KiB, plus slack for the runtime.
    const growth = after.arrayBuffers - before.arrayBuffers + after.heapUsed - before.heapUsed;
    expect(growth).to.be.below(4 * 256 * 1024 + 8 * 1024 * 1024);
  });
});
