// The native transport's I/O thread dispatches by the user-space dispatcher's policy
// (native/worker_picker.h): a busy worker takes no request while its current call has run
// past busyWorkerGraceUs, nor past its estimated backlog (workerBacklogUs, the cost learned
// per worker from the time between its answers), whatever arrives in the same read.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeRawRequest, rawCodec } from '@kmux/core';
import { HANDLERS, RawConnection, cleanup, gateTag, parseReply, release, startServer, started } from '../helpers.js';

afterEach(cleanup);

function requestFrame(id: number, payload: string): Buffer {
  return encodeFrame(encodeRawRequest(id, 'work', Buffer.from(payload)));
}

/** Resolves with `count` replies' payloads, or rejects after `ms` naming how many came. */
async function replies(conn: RawConnection, count: number, ms: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${conn.replies.length} of ${count} replies in ${ms} ms`)), ms);
  });
  try {
    await Promise.race([conn.waitReplies(count), late]);
  } finally {
    clearTimeout(timer);
  }
  return conn.replies.slice(0, count).map((body) => parseReply(body).payload!);
}

describe('native dispatch', () => {
  it('gives a worker held by a long call none of the fast calls that follow it', async () => {
    const { port } = await startServer({ transport: 'native' });
    const conn = await RawConnection.open(port);
    const tag = gateTag('long');
    conn.request(1, 'work', `gate:${tag}`);
    const heldThread = await started(tag);
    // The held call has now run far past busyWorkerGraceUs (50 µs).
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let id = 2; id <= 101; id++) conn.request(id, 'work', 'fast');
    const threads = await replies(conn, 100, 5000);
    expect(threads.filter((thread) => thread === String(heldThread))).toEqual([]);
    release(tag);
    await conn.waitReplies(101);
  });

  it('queues nothing behind a busy worker past its learned backlog, even requests read with its first', async () => {
    const { port } = await startServer({ transport: 'native' });
    const conn = await RawConnection.open(port);
    // Teach both workers that a request keeps them busy ~5 ms: each answers four such calls.
    for (let round = 0, id = 1000; round < 4; round++) {
      const tags = [gateTag('teach'), gateTag('teach')];
      for (const tag of tags) conn.request(id++, 'spin', tag);
      await Promise.all(tags.map(started));
      await new Promise((resolve) => setTimeout(resolve, 5));
      for (const tag of tags) release(tag);
      await conn.waitReplies(2 * (round + 1));
    }
    conn.replies.length = 0;

    // One write: the long call and ten fast ones arrive in the same read. The long call takes one
    // idle worker and the first fast call the other; both are then busy within busyWorkerGraceUs,
    // and only the backlog estimate (~5 ms each, over workerBacklogUs 500 µs) keeps the rest of
    // the fast calls from queueing behind the long call.
    const tag = gateTag('long');
    const frames = [`gate:${tag}`, ...Array.from({ length: 10 }, () => 'fast')];
    conn.write(Buffer.concat(frames.map((payload, i) => requestFrame(i + 1, payload))));
    const heldThread = await started(tag);
    const threads = await replies(conn, 10, 5000);
    expect(threads.filter((thread) => thread === String(heldThread))).toEqual([]);
    release(tag);
    await conn.waitReplies(11);
  });

  it('refuses slowMethods for a codec that does not say where requests name their method', async () => {
    // Lanes with each codec kmux ships: test/interop/slow-lanes.test.ts.
    const codec = { ...rawCodec({ handler: HANDLERS }), methodNames: undefined };
    await expect(startServer({ codec, transport: 'native', slowMethods: ['spin'] })).rejects.toThrow(
      "transport 'native' is unavailable: codec raw does not say where requests name their method (methodNames): native cannot apply slowMethods",
    );
  });
});
