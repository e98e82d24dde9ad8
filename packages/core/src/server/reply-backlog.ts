/** Replies wait in chunks this large: few enough objects per byte that the chunks are what is held. */
const CHUNK_BYTES = 64 * 1024;
/** A frame this large gets a chunk of its own size, so a chunk's unused tail stays under a quarter of it. */
const OWN_CHUNK_BYTES = CHUNK_BYTES / 4;

/**
 * Reply frames a connection holds while its socket still has earlier ones unsent, copied
 * into chunks of their own. A reply kept as it came would keep alive whatever it is a view
 * of (a worker's whole reply batch, a shared pool slab) plus a write request, a buffer object
 * and a callback each, several times the reply's own bytes for small replies; here the
 * memory held is `bytes`, the chunks' capacity, which is what the limits are charged.
 * Frames are never split between chunks, so a chunk's content ends on a frame's end: a
 * writer that sends it as one message, or lets other writers in between chunks, stays whole.
 */
export class ReplyBacklog {
  /** Closed chunks are cut to what they hold; the last one is whole and filled up to `fill`. */
  private chunks: Buffer[] = [];
  private fill = 0;
  /** Bytes of the first chunk already sent (consume()). */
  private offset = 0;
  /** Capacity of the chunks held. */
  bytes = 0;

  get empty(): boolean {
    return this.chunks.length === 0;
  }

  append(frame: Uint8Array): void {
    const last = this.chunks.length - 1;
    const tail = this.chunks[last];
    if (tail !== undefined && tail.length - this.fill >= frame.length) {
      tail.set(frame, this.fill);
      this.fill += frame.length;
      return;
    }
    if (tail !== undefined) this.chunks[last] = tail.subarray(0, this.fill);
    const chunk = Buffer.allocUnsafeSlow(frame.length >= OWN_CHUNK_BYTES ? frame.length : CHUNK_BYTES);
    chunk.set(frame);
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.fill = frame.length;
  }

  /** The unsent bytes of the first chunk: whole frames, ending on a frame's end. */
  first(): Buffer {
    const chunk = this.chunks[0]!;
    return chunk.subarray(this.offset, this.chunks.length === 1 ? this.fill : chunk.length);
  }

  /** Marks `sent` bytes of first() as sent; the chunk goes once all of it is. */
  consume(sent: number): void {
    this.offset += sent;
    const chunk = this.chunks[0]!;
    if (this.offset < (this.chunks.length === 1 ? this.fill : chunk.length)) return;
    this.chunks.shift();
    this.bytes -= chunk.buffer.byteLength;
    this.offset = 0;
    if (this.chunks.length === 0) this.fill = 0;
  }

  /** Hands over the unsent bytes in order (the last chunk cut to what it holds) and starts over. */
  take(): Buffer[] {
    const taken = this.chunks;
    const last = taken.length - 1;
    if (last >= 0) taken[last] = taken[last]!.subarray(0, this.fill);
    if (this.offset > 0) taken[0] = taken[0]!.subarray(this.offset);
    this.chunks = [];
    this.fill = 0;
    this.offset = 0;
    this.bytes = 0;
    return taken;
  }

  clear(): void {
    this.take();
  }
}
