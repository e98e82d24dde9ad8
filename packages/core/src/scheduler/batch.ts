/**
 * Batches cross the thread boundary as one transferred ArrayBuffer each: a worker
 * postMessage costs ~30 µs (DESIGN.md), so frames are packed per event-loop turn and the
 * cost is paid once per batch, not per request. Records are laid out back to back:
 *
 *   request: key u32 | deadline f64 (Date.now ms)          | length u32 | frame body
 *   reply:   key u32 | flags u32 | service time u32 (µs)   | length u32 | reply frame (length-prefixed)
 *
 * Reply frames carry their own length prefix so the main thread writes them as they are.
 */
const REQUEST_HEADER = 16;
const REPLY_HEADER = 16;

export const REPLY_FAILED = 1;
export const REPLY_NONE = 2;
/**
 * Not a reply: the call went asynchronous after `serviceUs` of synchronous work, so the
 * worker is free again; its reply comes in a later record (which then reports no time).
 */
export const REPLY_WENT_ASYNC = 4;
/** The reply carries an exception the service declares (WorkerResult.declaredException). */
export const REPLY_EXCEPTION = 8;

/** Growable byte buffer that is handed off (transferred) when a batch is sent. */
class BatchBuffer {
  private bytes: Buffer;
  private view: DataView;
  length = 0;
  count = 0;

  constructor(private readonly initialBytes: number) {
    this.bytes = Buffer.allocUnsafeSlow(initialBytes);
    this.view = new DataView(this.bytes.buffer);
  }

  reserve(extra: number): number {
    const start = this.length;
    const needed = start + extra;
    if (needed > this.bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.bytes.length * 2));
      this.bytes.copy(grown, 0, 0, start);
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length = needed;
    this.count++;
    return start;
  }

  get data(): Buffer {
    return this.bytes;
  }

  get dataView(): DataView {
    return this.view;
  }

  /** Returns the filled part as a fresh ArrayBuffer to transfer, and starts over. */
  take(): ArrayBuffer {
    const out = this.bytes.buffer.slice(0, this.length) as ArrayBuffer;
    this.length = 0;
    this.count = 0;
    return out;
  }

  /** Bytes of a batch this large are not worth keeping around between turns. */
  shrinkIfHuge(): void {
    if (this.bytes.length > 4 * this.initialBytes) {
      this.bytes = Buffer.allocUnsafeSlow(this.initialBytes);
      this.view = new DataView(this.bytes.buffer);
    }
  }
}

export class RequestBatchWriter {
  private readonly buffer = new BatchBuffer(64 * 1024);

  get count(): number {
    return this.buffer.count;
  }

  add(key: number, deadline: number, body: Uint8Array): void {
    const at = this.buffer.reserve(REQUEST_HEADER + body.length);
    const view = this.buffer.dataView;
    view.setUint32(at, key);
    view.setFloat64(at + 4, deadline);
    view.setUint32(at + 12, body.length);
    this.buffer.data.set(body, at + REQUEST_HEADER);
  }

  take(): ArrayBuffer {
    const out = this.buffer.take();
    this.buffer.shrinkIfHuge();
    return out;
  }
}

export function readRequestBatch(
  batch: ArrayBuffer,
  onRequest: (key: number, deadline: number, body: Buffer) => void,
): void {
  const view = new DataView(batch);
  for (let at = 0; at < batch.byteLength; ) {
    const key = view.getUint32(at);
    const deadline = view.getFloat64(at + 4);
    const length = view.getUint32(at + 12);
    const start = at + REQUEST_HEADER;
    onRequest(key, deadline, Buffer.from(batch, start, length));
    at = start + length;
  }
}

export class ReplyBatchWriter {
  private readonly buffer = new BatchBuffer(64 * 1024);

  get count(): number {
    return this.buffer.count;
  }

  /**
   * `frameBody` null: the request completed and owes no reply (REPLY_NONE is set).
   * `serviceUs`: how long the call kept the worker busy, for the main thread's cost model.
   */
  add(key: number, flags: number, serviceUs: number, frameBody: Uint8Array | null): void {
    const bodyLength = frameBody?.length ?? 0;
    const frameLength = frameBody ? 4 + bodyLength : 0;
    const at = this.buffer.reserve(REPLY_HEADER + frameLength);
    const view = this.buffer.dataView;
    view.setUint32(at, key);
    view.setUint32(at + 4, frameBody ? flags : flags | REPLY_NONE);
    view.setUint32(at + 8, Math.min(0xffffffff, Math.round(serviceUs)));
    view.setUint32(at + 12, frameLength);
    if (frameBody) {
      view.setUint32(at + REPLY_HEADER, bodyLength);
      this.buffer.data.set(frameBody, at + REPLY_HEADER + 4);
    }
  }

  take(): ArrayBuffer {
    const out = this.buffer.take();
    this.buffer.shrinkIfHuge();
    return out;
  }
}

export function readReplyBatch(
  batch: ArrayBuffer,
  onReply: (key: number, flags: number, serviceUs: number, frame: Buffer) => void,
): void {
  const view = new DataView(batch);
  for (let at = 0; at < batch.byteLength; ) {
    const key = view.getUint32(at);
    const flags = view.getUint32(at + 4);
    const serviceUs = view.getUint32(at + 8);
    const length = view.getUint32(at + 12);
    const start = at + REPLY_HEADER;
    onReply(key, flags, serviceUs, Buffer.from(batch, start, length));
    at = start + length;
  }
}
