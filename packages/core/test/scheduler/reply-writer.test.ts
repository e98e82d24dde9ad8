import { describe, expect, it } from 'vitest';
import { ReplyWriter, type ReplySink } from '../../src/scheduler/reply-writer.js';

/** sockmap's shared write lock: 0 when free, else 1 + the slot of the worker mid-frame. */
function sharedLock(): { readonly array: Int32Array; readonly index: number } {
  return { array: new Int32Array(new SharedArrayBuffer(4)), index: 0 };
}

/** A socket that takes what `accept` says (bytes taken, or an error to throw) for each send, its parts gathered. */
function scriptedSink(accept: (bytes: Uint8Array) => number | Error): ReplySink & { readonly sent: Buffer[] } {
  const sink = {
    sent: [] as Buffer[],
    send(parts: readonly Uint8Array[]): number {
      const bytes = Buffer.concat(parts);
      const taken = accept(bytes);
      if (taken instanceof Error) throw taken;
      sink.sent.push(Buffer.from(bytes.subarray(0, taken)));
      return taken;
    },
    waitWritable(): void {},
    close(): void {},
  };
  return sink;
}

/** A socket with `room` bytes of buffer left: each send takes what fits and uses it up; set `room` to make more. */
function sinkWithRoom(room: number): ReplySink & { readonly sent: Buffer[]; room: number } {
  const sink = Object.assign(
    scriptedSink((bytes) => {
      const taken = Math.min(sink.room, bytes.length);
      sink.room -= taken;
      return taken;
    }),
    { room },
  );
  return sink;
}

const WORKER_1 = 2;

describe('ReplyWriter on a shared write lock (sockmap)', () => {
  it('lets the lock go when the first send of a frame fails', () => {
    const lock = sharedLock();
    const errors: Error[] = [];
    const writer = new ReplyWriter(scriptedSink(() => new Error('EPIPE')), (error) => errors.push(error), lock, WORKER_1);
    writer.write([Buffer.from('frame')], () => {});
    expect(errors.map((error) => error.message)).toEqual(['EPIPE']);
    // Held, the other workers could never write on the connection again (nor see it fail).
    expect(Atomics.load(lock.array, lock.index)).toBe(0);
  });

  it('keeps the lock through a frame whose first send took nothing, and finishes the frame', () => {
    const lock = sharedLock();
    let room = 0;
    const sink = scriptedSink((bytes) => Math.min(room, bytes.length));
    const sent: string[] = [];
    const writer = new ReplyWriter(sink, (error) => expect.fail(error.message), lock, WORKER_1);
    writer.write([Buffer.from('frame')], () => sent.push('frame'));
    expect(Atomics.load(lock.array, lock.index)).toBe(WORKER_1);

    room = 100;
    writer.pump(); // the socket became writable
    expect(sent).toEqual(['frame']);
    expect(Buffer.concat(sink.sent).toString()).toBe('frame');
    expect(Atomics.load(lock.array, lock.index)).toBe(0);
  });

  it('lets the lock go when closed with a frame waiting for room', () => {
    const lock = sharedLock();
    const writer = new ReplyWriter(scriptedSink(() => 0), (error) => expect.fail(error.message), lock, WORKER_1);
    writer.write([Buffer.from('frame')], () => {});
    writer.close();
    expect(Atomics.load(lock.array, lock.index)).toBe(0);
  });
});

/** A frame of `bytes` (its 4-byte length prefix included) filled with `fill`. */
function frameOf(bytes: number, fill: number): Buffer {
  const frame = Buffer.alloc(bytes, fill);
  frame.writeUInt32BE(bytes - 4, 0);
  return frame;
}

/** Splits a byte stream into its length-prefixed frames. */
function framesIn(stream: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < stream.length; at += 4 + stream.readUInt32BE(at)) frames.push(stream.subarray(at, at + 4 + stream.readUInt32BE(at)));
  return frames;
}

describe('ReplyWriter while the socket is full (a client that does not read)', () => {
  it('sends a frame the socket takes at once as it is, without a copy', () => {
    const taken: Uint8Array[] = [];
    const writer = new ReplyWriter({ send: (parts) => (taken.push(...parts), parts.reduce((sum, part) => sum + part.length, 0)), waitWritable() {}, close() {} }, (error) => expect.fail(error.message));
    const frame = frameOf(100, 1);
    let sent = 0;
    writer.write([frame], () => sent++);
    expect(taken[0]).toBe(frame);
    expect(sent).toBe(1);
    expect(writer.idle).toBe(true);
  });

  it('sends a frame given in parts gathered, and keeps the rest of a partial send as one piece ending on the frame\'s end', () => {
    const sink = sinkWithRoom(5);
    const writer = new ReplyWriter(sink, (error) => expect.fail(error.message));
    const frame = frameOf(100, 7);
    const expected = Buffer.from(frame);
    const parts = [frame.subarray(0, 8), frame.subarray(8, 60), frame.subarray(60)];
    let sent = 0;
    writer.write(parts, () => sent++);
    expect(sink.sent).toEqual([expected.subarray(0, 5)]);
    parts[1]!.fill(0xee); // the writer kept a copy of what waits, not the caller's parts
    sink.room = Infinity;
    writer.pump();
    expect(sink.sent.length).toBe(2);
    expect(Buffer.concat(sink.sent).equals(expected)).toBe(true);
    expect(sent).toBe(1);
    expect(writer.idle).toBe(true);
  });

  it('copies what waits into chunks: counted by their capacity, not the buffers the frames came in, and sent whole, in order', () => {
    const sink = sinkWithRoom(10);
    const writer = new ReplyWriter(sink, (error) => expect.fail(error.message));
    const order: number[] = [];
    // 2,000 small replies, each a view into an 8 KiB buffer of its own (a worker's reply batch).
    const frames = Array.from({ length: 2000 }, (_, i) => frameOf(60, i & 0xff));
    for (const [i, frame] of frames.entries()) {
      const batch = Buffer.alloc(8 * 1024);
      frame.copy(batch, 1000);
      writer.write([batch.subarray(1000, 1000 + frame.length)], () => order.push(i));
      batch.fill(0xee); // the writer kept a copy, not the view
    }
    expect(order).toEqual([]);
    expect(writer.pendingBytes).toBeGreaterThanOrEqual(2000 * 60 - 10);
    expect(writer.pendingBytes).toBeLessThanOrEqual(2 * 64 * 1024);

    sink.room = Infinity;
    writer.pump();
    expect(order).toEqual(frames.map((_, i) => i));
    expect(Buffer.concat(sink.sent).equals(Buffer.concat(frames))).toBe(true);
    expect(writer.pendingBytes).toBe(0);
    expect(writer.idle).toBe(true);
  });

  it('ends every whole send on a frame\'s end (KCM sends each as one message; sockmap lets the lock go there)', () => {
    const lock = sharedLock();
    const sink = sinkWithRoom(0);
    const writer = new ReplyWriter(sink, (error) => expect.fail(error.message), lock, WORKER_1);
    // Sizes that do not divide a 64 KiB chunk, and some that get chunks of their own.
    const frames = Array.from({ length: 300 }, (_, i) => frameOf(i % 10 === 0 ? 40_000 : 100 + ((i * 7919) % 3000), i & 0xff));
    for (const frame of frames) writer.write([frame], () => {});
    sink.room = Infinity;
    const before = sink.sent.length;
    writer.pump();
    const sends = sink.sent.slice(before);
    expect(sends.length).toBeGreaterThan(3);
    for (const send of sends) expect(framesIn(send).reduce((sum, frame) => sum + frame.length, 0)).toBe(send.length);
    expect(Buffer.concat(sink.sent).equals(Buffer.concat(frames))).toBe(true);
    expect(Atomics.load(lock.array, lock.index)).toBe(0);
  });

  it('runs the same callback once for consecutive frames, after the last of them', () => {
    let room = 0;
    const writer = new ReplyWriter(scriptedSink((bytes) => Math.min(room, bytes.length)), (error) => expect.fail(error.message));
    const calls: string[] = [];
    const refused = (): void => void calls.push('refused');
    writer.write([frameOf(50, 1)], () => calls.push('a'));
    for (let i = 0; i < 1000; i++) writer.write([frameOf(50, 2)], refused);
    writer.write([frameOf(50, 3)], () => calls.push('b'));
    room = 50 + 500 * 50;
    writer.pump();
    expect(calls).toEqual(['a']);
    room = Infinity;
    writer.pump();
    expect(calls).toEqual(['a', 'refused', 'b']);
  });
});
