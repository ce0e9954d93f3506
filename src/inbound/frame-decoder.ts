/**
 * Bytes in, frames out. No sockets here, so every awkward
 * split is unit-tested with plain buffers.
 *
 * A frame is the bytes up to a "\n"; one "\r" before it is part of the
 * terminator. Bytes are kept as Buffers until a frame is complete and only then
 * decoded, so a UTF-8 character split across chunks arrives intact.
 *
 * An unfinished frame lives in one growable buffer: bytes are copied in, and
 * the buffer doubles when full, never past the limit (plus one byte for a
 * "\r" that may start the terminator). What a connection holds is therefore
 * bounded by maxFrameSize however the peer splits its writes: keeping one
 * Buffer per chunk instead costs hundreds of bytes per one-byte TCP segment or
 * TLS record, so a 1 MiB frame sent a byte at a time would hold ~400 MiB.
 */

const LF = 0x0a;
const CR = 0x0d;
/** First allocation for an unfinished frame; most frames arrive whole and never need one. */
const INITIAL_CAPACITY = 256;

/** Thrown by `push` when an unfinished frame grows past the limit. */
export class FrameOverflow extends Error {
  constructor (readonly limit: number) {
    super(`frame exceeds ${limit} bytes`);
  }
}

export class FrameDecoder {
  readonly maxFrameSize: number;
  /** The unfinished frame's bytes are `pending[0, pendingBytes)`. */
  private pending: Buffer | undefined;
  private pendingBytes = 0;

  constructor (maxFrameSize: number = Infinity) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes held for a frame not yet terminated. */
  get buffered (): number {
    return this.pendingBytes;
  }

  /** Bytes allocated for the unfinished frame (at most maxFrameSize + 1). */
  get capacity (): number {
    return this.pending === undefined ? 0 : this.pending.length;
  }

  /**
   * Feed one chunk; returns the frames it completes (without terminators, empty
   * lines skipped). Throws FrameOverflow, before keeping any byte over the limit,
   * when the unfinished frame exceeds `maxFrameSize`; the decoder must then be
   * discarded along with its connection. A returned frame may share memory with
   * `chunk`; the decoder never writes to it again.
   */
  push (chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    let start = 0;
    let lf = chunk.indexOf(LF, start);
    while (lf !== -1) {
      let frame: Buffer;
      if (this.pendingBytes === 0) {
        frame = chunk.subarray(start, lf);
      } else {
        this.append(chunk, start, lf, false);
        frame = this.pending!.subarray(0, this.pendingBytes);
        // The frame keeps the buffer; the next unfinished frame gets a new one.
        this.pending = undefined;
        this.pendingBytes = 0;
      }
      if (frame.length > 0 && frame[frame.length - 1] === CR) frame = frame.subarray(0, frame.length - 1);
      // Measured without the terminator, as maxFrameSize is documented.
      if (frame.length > this.maxFrameSize) throw new FrameOverflow(this.maxFrameSize);
      if (frame.length > 0) frames.push(frame);
      start = lf + 1;
      lf = chunk.indexOf(LF, start);
    }
    if (start < chunk.length) this.append(chunk, start, chunk.length, true);
    return frames;
  }

  /** End of stream: returns the last unterminated frame, if any. */
  end (): Buffer | null {
    if (this.pendingBytes === 0) return null;
    let frame = this.pending!.subarray(0, this.pendingBytes);
    this.pending = undefined;
    this.pendingBytes = 0;
    if (frame[frame.length - 1] === CR) frame = frame.subarray(0, frame.length - 1);
    if (frame.length > this.maxFrameSize) throw new FrameOverflow(this.maxFrameSize);
    return frame.length > 0 ? frame : null;
  }

  /**
   * Copies `chunk[from, to)` after the pending bytes. `unfinished`: no
   * terminator follows, so the limit applies now, with one byte of slack only
   * for a "\r" that may be the start of a terminator. (A terminated frame is
   * checked by the caller, without its "\r".)
   */
  private append (chunk: Buffer, from: number, to: number, unfinished: boolean): void {
    const total = this.pendingBytes + to - from;
    const max = this.maxFrameSize;
    if (total > max && (unfinished ? !(total === max + 1 && chunk[to - 1] === CR) : total > max + 1)) {
      this.pending = undefined;
      this.pendingBytes = 0;
      throw new FrameOverflow(max);
    }
    let buffer = this.pending;
    if (buffer === undefined || buffer.length < total) {
      // Amortised doubling, capped at the most a frame may hold (limit + "\r").
      const cap = max === Infinity ? Infinity : max + 1;
      const size = Math.min(cap, Math.max(total, INITIAL_CAPACITY, buffer === undefined ? 0 : buffer.length * 2));
      // Outside Node's shared pool: a small pooled slice would keep its whole 8 KiB slab alive.
      const grown = Buffer.allocUnsafeSlow(size);
      if (buffer !== undefined) buffer.copy(grown, 0, 0, this.pendingBytes);
      buffer = grown;
      this.pending = grown;
    }
    chunk.copy(buffer, this.pendingBytes, from, to);
    this.pendingBytes = total;
  }
}
