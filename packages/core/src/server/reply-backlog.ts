/** Replies wait in chunks this large: few enough objects per byte that the chunks are what is held. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Reply bytes a connection holds while its socket still has earlier ones unsent, copied
 * into chunks of their own. A reply handed to the socket as it came would keep alive
 * whatever it is a view of (a worker's whole reply batch, a shared pool slab) plus a write
 * request and a buffer object each, several times the reply's own bytes for small replies;
 * here the memory held is `bytes`, the chunks' capacity, which is what the budget is charged.
 */
export class ReplyBacklog {
  private chunks: Buffer[] = [];
  /** Bytes used of the last chunk. */
  private fill = 0;
  /** Capacity of the chunks held. */
  bytes = 0;

  get empty(): boolean {
    return this.chunks.length === 0;
  }

  append(frame: Uint8Array): void {
    let copied = 0;
    while (copied < frame.length) {
      let last = this.chunks[this.chunks.length - 1];
      if (last === undefined || this.fill === last.length) {
        last = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, frame.length - copied));
        this.chunks.push(last);
        this.bytes += last.length;
        this.fill = 0;
      }
      const taking = Math.min(frame.length - copied, last.length - this.fill);
      last.set(frame.subarray(copied, copied + taking), this.fill);
      this.fill += taking;
      copied += taking;
    }
  }

  /** Hands over the chunks in order (the last one cut to what it holds) and starts over. */
  take(): Buffer[] {
    const taken = this.chunks;
    const last = taken.length - 1;
    if (last >= 0) taken[last] = taken[last]!.subarray(0, this.fill);
    this.chunks = [];
    this.fill = 0;
    this.bytes = 0;
    return taken;
  }

  clear(): void {
    this.take();
  }
}
