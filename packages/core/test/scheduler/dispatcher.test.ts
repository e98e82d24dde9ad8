import { afterEach, describe, expect, it } from 'vitest';
import type { KmuxError } from '@kmux/core';
import { cleanup, gateTag, rejection, release, startServer, started, until } from '../helpers.js';

afterEach(cleanup);

describe('dispatch with a per-worker depth cap', () => {
  it('keeps fast requests flowing through the other worker while one is stuck in a synchronous call', async () => {
    const { server, client } = await startServer({ workerQueueDepth: 1 });
    const tag = gateTag('spin');
    let slowDone = false;
    const slow = client.call('spin', tag).then((reply) => {
      slowDone = true;
      return reply;
    });
    const stuckThread = await started(tag);
    const stuck = server.stats().workers.findIndex((w) => w.threadId === stuckThread);

    // All of these complete while the spinning worker still blocks its event loop.
    const fast = await Promise.all(Array.from({ length: 50 }, (_, i) => client.call('echo', `fast ${i}`, { timeoutMs: 5000 })));
    expect(fast.map(String)).toEqual(Array.from({ length: 50 }, (_, i) => `fast ${i}`));
    expect(slowDone).toBe(false);
    // The stuck worker was given nothing beyond the request it is stuck on.
    expect(server.stats().workers[stuck]).toMatchObject({ dispatched: 1, inFlight: 1 });

    release(tag);
    expect((await slow).toString()).toBe(`released ${tag}`);
  });

  it('holds requests in the main thread while every worker is full, then runs them first in, first out', async () => {
    const { server, client } = await startServer({ workerQueueDepth: 1 });
    const tags = [gateTag('a'), gateTag('b')];
    const gated = tags.map((tag) => client.call('wait', tag));
    await Promise.all(tags.map(started));
    const order: string[] = [];
    const queued = Array.from({ length: 5 }, (_, i) =>
      client.call('echo', `q${i}`).then((reply) => {
        order.push(reply.toString());
        return reply;
      }),
    );
    await until(() => server.stats().requests.queued === 5, '5 requests queued');
    expect(server.stats().workers.map((w) => w.dispatched)).toEqual([1, 1]);

    release(tags[0]!);
    await Promise.all(queued);
    // One worker with room for one: they ran one after another, in arrival order.
    expect(order).toEqual(['q0', 'q1', 'q2', 'q3', 'q4']);
    expect(server.stats().requests.queued).toBe(0);
    release(tags[1]!);
    await Promise.all(gated);
  });

  it('never dispatches a queued request whose deadline passed while it waited', async () => {
    const { server, client } = await startServer({ workerQueueDepth: 1, deadlineMs: 100, methodDeadlines: { wait: 60_000 } });
    const tags = [gateTag('a'), gateTag('b')];
    const gated = tags.map((tag) => client.call('wait', tag));
    await Promise.all(tags.map(started));
    const error = await rejection(client.call('echo', 'too late'));
    expect(error.kind).toBe('deadline_exceeded');
    for (const tag of tags) release(tag);
    await Promise.all(gated);
    // Workers got the two gated requests and nothing else; the expired one left the queue.
    const stats = server.stats();
    expect(stats.workers.map((w) => w.dispatched)).toEqual([1, 1]);
    expect(stats.requests).toMatchObject({ queued: 0, inFlight: 0, dropped: 0 });
    expect((await client.call('echo', 'next')).toString()).toBe('next');
  });
});

describe.each(['userspace', 'native'] as const)('GC pauses (%s)', (transport) => {
  it('sends nothing to a worker in a GC pause while another can take the request', async () => {
    // Bounds this loose let the free worker take all ten, however long it has been busy.
    const { client } = await startServer({ transport, workers: 2, workerBacklogUs: 1_000_000, busyWorkerGraceUs: 1_000_000 });
    const tag = gateTag('collect');
    const collecting = Number((await client.call('collect', tag)).toString());
    expect(await started(tag)).toBe(collecting);
    // The worker announces itself just before its loop; the thread it wakes can preempt it
    // there, so give it time to be collecting before the calls go out.
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Sent together: without the GC check some go to the collecting worker, idle as far as
    // the dispatcher knows, and wait out its pauses.
    const replies = Promise.all(Array.from({ length: 10 }, () => client.call('threadId', '')));
    // A call that went to the collecting worker would wait for this.
    const releasing = setTimeout(() => release(tag), 2_000);
    const answered = await replies;
    clearTimeout(releasing);
    release(tag);
    expect(answered.map(Number)).not.toContain(collecting);
  });
});

/** Teaches the cost model that `spin` is slow: one call that keeps a worker busy ~30 ms, well over the budget. */
async function teachSlowSpin(client: Awaited<ReturnType<typeof startServer>>['client']): Promise<void> {
  const lesson = gateTag('lesson');
  const learning = client.call('spin', lesson);
  await started(lesson);
  await new Promise((resolve) => setTimeout(resolve, 30));
  release(lesson);
  await learning;
}

describe('dispatch by estimated backlog', () => {
  it('learns that a method is slow and stops queueing other requests behind it', async () => {
    // Default depth (32): only the backlog estimate can keep requests off the busy worker.
    const { server, client } = await startServer({ workerBacklogUs: 2_000 });
    await teachSlowSpin(client);

    const tag = gateTag('slow');
    const slow = client.call('spin', tag);
    const stuckThread = await started(tag);
    const stuck = server.stats().workers.findIndex((w) => w.threadId === stuckThread);
    const before = server.stats().workers[stuck]!.dispatched;

    const fast = await Promise.all(Array.from({ length: 50 }, (_, i) => client.call('echo', `fast ${i}`)));
    expect(fast.map(String)).toEqual(Array.from({ length: 50 }, (_, i) => `fast ${i}`));
    // The busy worker's estimated backlog was over budget: it got none of the fast calls.
    expect(server.stats().workers[stuck]!.dispatched).toBe(before);

    release(tag);
    await slow;
  });

  it('gives an expensive request to a worker whose only calls went async', async () => {
    // Regression: "idle" used to mean "holds no request", so a method estimated above the
    // budget waited in the main thread until unrelated async calls finished.
    const { client } = await startServer({ workers: 1, workerBacklogUs: 2_000 });
    await teachSlowSpin(client);

    const parked = gateTag('parked');
    const waiting = client.call('wait', parked);
    await started(parked);
    // The worker's event loop is free: the spin (estimated ~30 ms) must start now, not after `wait`.
    const tag = gateTag('expensive');
    const expensive = client.call('spin', tag);
    await started(tag);
    release(tag);
    expect((await expensive).toString()).toBe(`released ${tag}`);
    release(parked);
    await waiting;
  });

  it('lets an idle worker take a request whatever its estimated cost', async () => {
    const { client } = await startServer({ workers: 1, workerBacklogUs: 1 });
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => client.call('echo', `r${i}`)));
    expect(replies.map(String)).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
  });
});

describe('the dispatch policy: a fast call never waits behind a running one', () => {
  it('answers every fast call on the connection from another worker while one worker runs a long call of the same method', async () => {
    // Defaults (depth 32, backlog 2 ms): only the running call's age keeps requests off the held worker.
    const { client } = await startServer();
    // The cost model learns that `work` costs a few µs: the long call below looks as cheap.
    await Promise.all(Array.from({ length: 200 }, () => client.call('work', 'warm-up')));
    const tag = gateTag('long');
    const long = client.call('work', `gate:${tag}`);
    const heldThread = await started(tag);
    // The held call has now run far longer than busyWorkerGraceUs (50 µs).
    await new Promise((resolve) => setTimeout(resolve, 20));

    const threads = await Promise.all(Array.from({ length: 200 }, () => client.call('work', 'fast', { timeoutMs: 5000 })));
    expect(threads.map(Number).filter((thread) => thread === heldThread)).toEqual([]);
    expect(new Set(threads.map(String)).size).toBe(1);

    release(tag);
    expect((await long).toString()).toBe(`released ${tag}`);
  });

  it('serves waiting requests round robin over connections: one request waits for one of each other connection, not a whole flood', async () => {
    const { server, client, newClient } = await startServer({ workers: 1, workerQueueDepth: 1 });
    const tag = gateTag('hold');
    const held = client.call('wait', tag);
    await started(tag);
    const flooder = newClient();
    const polite = newClient();
    const order: string[] = [];
    const note = (reply: Buffer) => order.push(reply.toString());
    const flood = Array.from({ length: 50 }, (_, i) => flooder.call('echo', `flood ${i}`).then(note));
    await until(() => server.stats().requests.queued === 50, 'the flood queued');
    const politeCall = polite.call('echo', 'polite').then(note);
    await until(() => server.stats().requests.queued === 51, 'the polite call queued');

    release(tag);
    await Promise.all([...flood, politeCall, held]);
    // One FIFO would have run all 50 first; round robin runs it second.
    expect(order.indexOf('polite')).toBe(1);
    expect(order.filter((r) => r.startsWith('flood'))).toEqual(Array.from({ length: 50 }, (_, i) => `flood ${i}`));
  });

  it('never refuses a connection within its fair share of maxInFlight because another holds the rest', async () => {
    const { server, client, newClient } = await startServer({ maxInFlight: 10, workers: 1 });
    const tags = Array.from({ length: 20 }, (_, i) => gateTag(`greedy-${i}`));
    const greedy = tags.map((tag) => client.call('wait', tag).then(String, (error: KmuxError) => error.kind));
    await until(() => server.stats().requests.inFlight === 10, 'the greedy connection at the server limit');
    const polite = newClient();
    await polite.call('echo', 'connect');
    // Two connections: a fair share is 5. The greedy one holds 10 and is refused; the polite one holds 0.
    expect((await polite.call('echo', 'still served')).toString()).toBe('still served');
    for (const tag of tags) release(tag);
    const outcomes = await Promise.all(greedy);
    expect(outcomes.filter((o) => o === 'overloaded')).toHaveLength(10);
  });
});

describe.each(['userspace', 'native'] as const)('lanes (%s)', (transport) => {
  it('runs slowMethods only on slowWorkers workers, leaving the others to fast calls', async () => {
    const { server, client } = await startServer({ transport, workers: 2, slowMethods: ['spin'], slowWorkers: 1 });
    const tags = [gateTag('slow-a'), gateTag('slow-b')];
    const slow = tags.map((tag) => client.call('spin', tag));
    const first = await started(tags[0]!);
    await until(() => server.stats().requests.queued === 1, 'the second slow call waiting for the slow lane');
    const fast = await Promise.all(Array.from({ length: 20 }, () => client.call('threadId', '')));
    expect(fast.map(Number).filter((thread) => thread === first)).toEqual([]);
    release(tags[0]!);
    expect(await started(tags[1]!)).toBe(first);
    release(tags[1]!);
    await Promise.all(slow);
  });
});
