import type { UnframedMessages } from '../codec/codec.js';
import { FrameTooLargeError } from '../errors.js';
import type { StreamSplitter } from './frame-splitter.js';

/**
 * Splits a stream of messages that carry no length prefix (Thrift's unframed transport),
 * asking the codec where each one ends. The same maxFrameBytes holds: a message that
 * declares (by a string or container size) more than the limit fails before its bytes are
 * buffered. A partial message is measured again only once it has the bytes the last
 * measure asked for, so a large field costs one walk, not one per chunk. Messages lying
 * wholly inside one chunk are returned as views into it.
 */
export class UnframedSplitter implements StreamSplitter {
  private parts: Buffer[] = [];
  private held = 0;
  /** What the held partial message needs before measuring it again is worth it. */
  private atLeast = 0;

  constructor(
    private readonly messages: UnframedMessages,
    private readonly maxFrameBytes: number,
  ) {}

  get bufferedBytes(): number {
    return this.held;
  }

  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    let rest = chunk;
    if (this.held > 0) {
      this.parts.push(chunk);
      this.held += chunk.length;
      if (this.held < this.atLeast) return;
      rest = Buffer.concat(this.parts, this.held);
      this.parts = [];
      this.held = 0;
    }
    while (rest.length > 0) {
      const extent = this.messages.measure(rest);
      if (!extent.complete) {
        this.check(extent.atLeast);
        this.parts = [rest];
        this.held = rest.length;
        this.atLeast = extent.atLeast;
        return;
      }
      this.check(extent.length);
      onFrame(rest.subarray(0, extent.length));
      rest = rest.subarray(extent.length);
    }
  }

  private check(length: number): void {
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
  }
}
