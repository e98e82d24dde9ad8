import { describe, expect, it } from 'vitest';
import { ReplyWriter, type ReplySink } from '../../src/scheduler/reply-writer.js';

/** sockmap's shared write lock: 0 when free, else 1 + the slot of the worker mid-frame. */
function sharedLock(): { readonly array: Int32Array; readonly index: number } {
  return { array: new Int32Array(new SharedArrayBuffer(4)), index: 0 };
}

/** A socket that takes what `accept` says (bytes taken, or an error to throw) for each send. */
function scriptedSink(accept: (bytes: Uint8Array) => number | Error): ReplySink & { readonly sent: Buffer[] } {
  const sink = {
    sent: [] as Buffer[],
    send(bytes: Uint8Array): number {
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

const WORKER_1 = 2;

describe('ReplyWriter on a shared write lock (sockmap)', () => {
  it('lets the lock go when the first send of a frame fails', () => {
    const lock = sharedLock();
    const errors: Error[] = [];
    const writer = new ReplyWriter(scriptedSink(() => new Error('EPIPE')), (error) => errors.push(error), lock, WORKER_1);
    writer.write(Buffer.from('frame'), () => {});
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
    writer.write(Buffer.from('frame'), () => sent.push('frame'));
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
    writer.write(Buffer.from('frame'), () => {});
    writer.close();
    expect(Atomics.load(lock.array, lock.index)).toBe(0);
  });
});
