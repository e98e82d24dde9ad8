import { describe, expect, it } from 'vitest';
import { DeadlineExceededError, decodeRawReply, encodeRawRequest, rawCodec, type WorkerCodec } from '@kmux/core';
import { HANDLERS } from '../helpers.js';

async function workerCodec(): Promise<WorkerCodec> {
  const { worker } = rawCodec({ handler: HANDLERS });
  const { createWorkerCodec } = (await import(worker.module)) as { createWorkerCodec: (options: unknown) => Promise<WorkerCodec> };
  return createWorkerCodec(worker.options);
}

describe('raw worker codec: what kernel transports need', () => {
  it('reads the head like the server half (peek)', async () => {
    const codec = await workerCodec();
    expect(codec.peek!(encodeRawRequest(9, 'echo', Buffer.from('x')))).toEqual({ id: 9, method: 'echo', oneway: false });
    expect(() => codec.peek!(Buffer.from([0, 0]))).toThrow(expect.objectContaining({ kind: 'protocol' }));
  });

  it('answers a failed request with its id and error kind (errorReply), or null without an id', async () => {
    const codec = await workerCodec();
    const reply = codec.errorReply!(encodeRawRequest(0xfffffffe, 'echo', Buffer.alloc(0)), new DeadlineExceededError('echo', 5))!;
    expect(reply.readUInt32BE(0)).toBe(0xfffffffe);
    expect(() => decodeRawReply(reply)).toThrow(expect.objectContaining({ kind: 'deadline_exceeded', message: 'echo exceeded its 5 ms deadline' }));
    expect(codec.errorReply!(Buffer.from([1, 2]), new DeadlineExceededError('echo', 5))).toBeNull();
  });
});
