/**
 * Bytes in, frames out. No sockets here, so every awkward
 * split is unit-tested with plain buffers.
 *
 * A frame is the bytes up to a "\n"; one "\r" before it is part of the
 * terminator. Bytes are kept as Buffers until a frame is complete and only then
 * decoded, so a UTF-8 character split across chunks arrives intact.
 */

const LF = 0x0a;
const CR = 0x0d;

/** Thrown by `push` when an unfinished frame grows past the limit. */
export class FrameOverflow extends Error {
  constructor (readonly limit: number) {
    super(`frame exceeds ${limit} bytes`);
  }
}

export class FrameDecoder {
  readonly maxFrameSize: number;
  /** Pieces of the unfinished frame. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor (maxFrameSize: number = Infinity) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes held for a frame not yet terminated. */
  get buffered (): number {
    return this.pendingBytes;
  }

  /**
   * Feed one chunk; returns the frames it completes (without terminators, empty
   * lines skipped). Throws FrameOverflow, before keeping any byte over the limit,
   * when the unfinished frame exceeds `maxFrameSize`; the decoder must then be
   * discarded along with its connection.
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
        this.pending.push(chunk.subarray(start, lf));
        frame = Buffer.concat(this.pending, this.pendingBytes + lf - start);
        this.pending = [];
        this.pendingBytes = 0;
      }
      if (frame.length > 0 && frame[frame.length - 1] === CR) frame = frame.subarray(0, frame.length - 1);
      // Measured without the terminator, as maxFrameSize is documented.
      if (frame.length > this.maxFrameSize) throw new FrameOverflow(this.maxFrameSize);
      if (frame.length > 0) frames.push(frame);
      start = lf + 1;
      lf = chunk.indexOf(LF, start);
    }
    if (start < chunk.length) {
      const rest = chunk.length - start;
      const total = this.pendingBytes + rest;
      // One byte of slack only for a "\r" that may be the start of a terminator.
      if (total > this.maxFrameSize && !(total === this.maxFrameSize + 1 && chunk[chunk.length - 1] === CR)) {
        this.pending = [];
        this.pendingBytes = 0;
        throw new FrameOverflow(this.maxFrameSize);
      }
      // Copy a small tail so that one large socket chunk is not kept alive by it.
      this.pending.push(start === 0 ? chunk : Buffer.from(chunk.subarray(start)));
      this.pendingBytes = total;
    }
    return frames;
  }

  /** End of stream: returns the last unterminated frame, if any. */
  end (): Buffer | null {
    if (this.pendingBytes === 0) return null;
    let frame = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (frame[frame.length - 1] === CR) frame = frame.subarray(0, frame.length - 1);
    if (frame.length > this.maxFrameSize) throw new FrameOverflow(this.maxFrameSize);
    return frame.length > 0 ? frame : null;
  }
}
