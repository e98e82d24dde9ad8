import { FrameTooLargeError } from '../errors.js';

export const LENGTH_PREFIX_BYTES = 4;

/** Splits a byte stream into messages; a connection holds one, framed or unframed. */
export interface StreamSplitter {
  /** Bytes held for a message not yet complete. */
  readonly bufferedBytes: number;
  /** Feeds a chunk and calls `onFrame` with each complete message body, in order; throws a KmuxError on bad input. */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void;
}

/**
 * Incremental splitter for 4-byte big-endian length-prefixed frames (Thrift's framed
 * transport). Each length is checked against the limit before any of the body is
 * buffered, so an oversized frame costs nothing but its header. Frames lying wholly
 * inside one chunk are returned as views into it, without copying.
 */
export class FrameSplitter implements StreamSplitter {
  private readonly header = Buffer.alloc(LENGTH_PREFIX_BYTES);
  /** Header bytes of a split frame received so far; 0 when no frame is split. */
  private headerFill = 0;
  /** Body length of the split frame, once its header is complete; -1 otherwise. */
  private bodyLength = -1;
  private bodyParts: Buffer[] = [];
  private bodyFill = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /**
   * Feeds a chunk and calls `onFrame` with each complete frame body, in order.
   * Throws FrameTooLargeError on an oversized length; the stream is unusable after that.
   */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    let offset = this.headerFill > 0 ? this.continueSplitFrame(chunk, onFrame) : 0;
    while (chunk.length - offset >= LENGTH_PREFIX_BYTES) {
      const length = this.checked(chunk.readUInt32BE(offset));
      const end = offset + LENGTH_PREFIX_BYTES + length;
      if (end > chunk.length) break;
      onFrame(chunk.subarray(offset + LENGTH_PREFIX_BYTES, end));
      offset = end;
    }
    if (offset < chunk.length) this.continueSplitFrame(chunk.subarray(offset), onFrame);
  }

  /** Adds bytes to the split frame; returns how many of them it took. */
  private continueSplitFrame(chunk: Buffer, onFrame: (body: Buffer) => void): number {
    let used = 0;
    if (this.bodyLength < 0) {
      used = Math.min(LENGTH_PREFIX_BYTES - this.headerFill, chunk.length);
      chunk.copy(this.header, this.headerFill, 0, used);
      this.headerFill += used;
      if (this.headerFill < LENGTH_PREFIX_BYTES) return used;
      this.bodyLength = this.checked(this.header.readUInt32BE(0));
    }
    const take = Math.min(this.bodyLength - this.bodyFill, chunk.length - used);
    if (take > 0) this.bodyParts.push(chunk.subarray(used, used + take));
    this.bodyFill += take;
    used += take;
    if (this.bodyFill === this.bodyLength) {
      const body = Buffer.concat(this.bodyParts, this.bodyLength);
      this.headerFill = 0;
      this.bodyLength = -1;
      this.bodyParts = [];
      this.bodyFill = 0;
      onFrame(body);
    }
    return used;
  }

  private checked(length: number): number {
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
    return length;
  }
}

/** Prefixes a frame body with its 4-byte big-endian length. */
export function encodeFrame(body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, LENGTH_PREFIX_BYTES);
  return frame;
}
