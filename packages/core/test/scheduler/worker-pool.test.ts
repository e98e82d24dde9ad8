import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, gateTag, rejection, release, startServer, started, until, type Started } from '../helpers.js';

afterEach(cleanup);

/**
 * Holds one worker busy with a gated request from a second connection. The next request
 * goes to the other, idle worker (least loaded first): `died` is that worker's slot.
 */
async function holdOneWorker(s: Started): Promise<{ busy: Promise<Buffer>; busyTag: string; died: number }> {
  const busyTag = gateTag('busy');
  const busy = s.newClient().call('wait', busyTag);
  await started(busyTag);
  const busySlot = s.server.stats().workers.findIndex((w) => w.inFlight === 1);
  expect(busySlot).toBeGreaterThanOrEqual(0);
  return { busy, busyTag, died: 1 - busySlot };
}

describe.each([
  { what: 'calls process.exit mid-request', method: 'exit', reason: /worker exited with code: 7/ },
  { what: 'exceeds resourceLimits', method: 'hog', reason: /memory limit|out of memory/i },
])('a worker that $what', ({ method, reason }) => {
  it('fails only its own request with worker_died and is replaced', async () => {
    const s = await startServer({ resourceLimits: { maxOldGenerationSizeMb: 32 } });
    const threadsBefore = s.server.stats().workers.map((w) => w.threadId);
    const { busy, busyTag, died } = await holdOneWorker(s);

    const error = await rejection(s.client.call(method, gateTag(method)));
    expect(error.kind).toBe('worker_died');
    expect(error.message).toMatch(reason);
    expect(error.message).toContain(`worker ${died} died`);

    // The request held by the other worker, on another connection, is unharmed.
    release(busyTag);
    expect((await busy).toString()).toBe(`released ${busyTag}`);

    await until(() => s.server.stats().workers[died]!.live, 'replacement worker');
    const workers = s.server.stats().workers;
    expect(workers.map((w) => w.restarts)).toEqual(died === 0 ? [1, 0] : [0, 1]);
    expect(workers[died]!.threadId).not.toBe(threadsBefore[died]);
    expect(workers[1 - died]!.threadId).toBe(threadsBefore[1 - died]);
    expect(s.logger.text('error')).toMatch(new RegExp(`worker ${died} exited: .*${reason.source}`, reason.flags));

    // Later requests, on the same connection too, are served by both workers.
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => s.client.call('echo', `after ${i}`)));
    expect(replies.map(String)).toEqual(Array.from({ length: 40 }, (_, i) => `after ${i}`));
    const stats = s.server.stats();
    expect(stats.workers[died]!.dispatched).toBeGreaterThan(1);
    expect(stats.requests.outcomes).toMatchObject({ worker_died: 1, ok: 41 });
    expect(stats.connections.open).toBe(2);
  });
});

it('fails every request the dying worker held, and only those', async () => {
  const s = await startServer();
  // Four gated requests in one burst: the dispatcher spreads them 2 and 2.
  const tags = Array.from({ length: 4 }, () => gateTag('held'));
  const calls = Promise.allSettled(tags.map((tag) => s.client.call('wait', tag)));
  const threads = await Promise.all(tags.map(started));
  const exitTag = gateTag('exit');
  const exitCall = s.newClient().call('exit', exitTag);
  const doomedThread = await started(exitTag);
  expect(threads.filter((t) => t === doomedThread)).toHaveLength(2);

  expect((await rejection(exitCall)).kind).toBe('worker_died');
  for (const tag of tags) release(tag);
  const settled = await calls;
  settled.forEach((result, i) => {
    if (threads[i] === doomedThread) expect(result).toMatchObject({ status: 'rejected', reason: { kind: 'worker_died' } });
    else expect(result).toMatchObject({ status: 'fulfilled', value: Buffer.from(`released ${tags[i]}`) });
  });
  expect(s.server.stats().requests.outcomes).toMatchObject({ worker_died: 3, ok: 2 });
});
