import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RawConnection,
  cleanup,
  gateTag,
  parseReply,
  rejection,
  release,
  startServer,
  started,
  type Started,
} from '../helpers.js';
import { prng } from '../random.js';

/** A payload that says which request it belongs to, padded to a random size. */
function payloadFor(tag: string, size: number): Buffer {
  const head = Buffer.from(`${tag};`);
  return Buffer.concat([head, Buffer.alloc(Math.max(0, size - head.length), tag.length & 0xff)]);
}

describe('requests over TCP (2 workers, raw codec)', () => {
  let s: Started;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(cleanup);

  it('answers 1000 pipelined requests on one connection, each with its own payload', async () => {
    const random = prng(42);
    const payloads = Array.from({ length: 1000 }, (_, i) => payloadFor(`req-${i}`, random.int(0, 4000)));
    const replies = await Promise.all(payloads.map((p, i) => s.client.call(i % 3 === 0 ? 'asyncEcho' : 'echo', p)));
    replies.forEach((reply, i) => expect(reply.equals(payloads[i]!), `reply ${i}`).toBe(true));
    // Both workers took part: the spread is 1:N, not one worker per connection.
    expect(s.server.stats().workers.every((w) => w.dispatched > 0)).toBe(true);
  });

  it('keeps replies on their own connection with many connections at once', async () => {
    const clients = Array.from({ length: 16 }, () => s.newClient());
    await Promise.all(
      clients.map(async (client, c) => {
        const payloads = Array.from({ length: 60 }, (_, i) => payloadFor(`conn-${c}-req-${i}`, (c * 997 + i * 131) % 3000));
        const replies = await Promise.all(payloads.map((p) => client.call('echo', p)));
        replies.forEach((reply, i) => expect(reply.equals(payloads[i]!), `connection ${c} reply ${i}`).toBe(true));
      }),
    );
  });

  it('lets fast replies overtake a slow request issued before them on the same connection', async () => {
    const conn = await RawConnection.open(s.port);
    const tag = gateTag('slow');
    conn.request(1, 'wait', tag);
    await started(tag);
    for (let id = 2; id <= 6; id++) conn.request(id, 'echo', `fast ${id}`);
    await conn.waitReplies(5);
    // Replies from two workers may interleave; the slow one is simply not among them.
    expect(conn.replies.map((r) => parseReply(r).id).sort()).toEqual([2, 3, 4, 5, 6]);
    release(tag);
    await conn.waitReplies(6);
    expect(parseReply(conn.replies[5]!)).toEqual({ id: 1, payload: `released ${tag}` });
  });

  it('fails only the request whose handler throws or rejects, with kind "handler"', async () => {
    const results = await Promise.allSettled([
      s.client.call('echo', 'a'),
      s.client.call('fail', 'sync'),
      s.client.call('echo', 'b'),
      s.client.call('reject', 'async'),
      s.client.call('notBytes', ''),
      s.client.call('upper', 'c'),
    ]);
    const [a, sync, b, async, notBytes, c] = results;
    expect(a).toMatchObject({ status: 'fulfilled', value: Buffer.from('a') });
    expect(b).toMatchObject({ status: 'fulfilled', value: Buffer.from('b') });
    expect(c).toMatchObject({ status: 'fulfilled', value: Buffer.from('C') });
    expect(sync).toMatchObject({ status: 'rejected', reason: { kind: 'handler', message: 'boom: sync' } });
    expect(async).toMatchObject({ status: 'rejected', reason: { kind: 'handler', message: 'async boom: async' } });
    expect(notBytes).toMatchObject({ status: 'rejected', reason: { kind: 'handler' } });
    expect((notBytes as PromiseRejectedResult).reason.message).toMatch(/Uint8Array or a string/);
  });

  it('reports an async handler resolving to something other than bytes as a handler error, like a sync one', async () => {
    const error = await rejection(s.client.call('asyncNotBytes', ''));
    expect(error.kind).toBe('handler');
    expect(error.message).toMatch(/Uint8Array or a string/);
    // Not mistaken for a bug in the codec itself.
    expect(s.logger.text('error')).toBe('');
  });

  it('answers an unknown method with "unknown_method", also for names on Object.prototype', async () => {
    for (const method of ['nope', 'toString', 'constructor', '__proto__', 'GATE_CHANNEL']) {
      const error = await rejection(s.client.call(method, 'x'));
      expect(error.kind, method).toBe('unknown_method');
      expect(error.message).toContain(method);
    }
    expect((await s.client.call('echo', 'still fine')).toString()).toBe('still fine');
  });

  it('serves empty payloads and a large one', async () => {
    expect((await s.client.call('echo', Buffer.alloc(0))).length).toBe(0);
    const large = payloadFor('large', 3 * 1024 * 1024 + 17);
    expect((await s.client.call('echo', large)).equals(large)).toBe(true);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(2_000_000);
    expect((await s.client.call('big', size)).length).toBe(2_000_000);
  });
});

describe('deadlines', () => {
  afterAll(cleanup);

  it('fails a request past its deadline, drops its late result and leaves the others alone', async () => {
    const { server, client } = await startServer({ deadlineMs: 150, methodDeadlines: { wait: 60_000 } });
    const short = gateTag('short');
    const long = gateTag('long');
    const late = client.call('waitShort', short); // default deadline: 150 ms
    const patient = client.call('wait', long); // per-method override: 60 s
    await Promise.all([started(short), started(long)]);
    const echo = client.call('echo', 'unaffected');

    const error = await rejection(late);
    expect(error.kind).toBe('deadline_exceeded');
    expect(error.message).toContain('waitShort exceeded its 150 ms deadline');
    expect((await echo).toString()).toBe('unaffected');
    expect(server.stats().requests.dropped).toBe(0);

    // The handler finishes after all: its reply has nobody to go to.
    release(short);
    await expect.poll(() => server.stats().requests.dropped).toBe(1);

    // The other gated request outlived the 150 ms default thanks to its override.
    release(long);
    expect((await patient).toString()).toBe(`released ${long}`);
    const stats = server.stats();
    expect(stats.requests.outcomes).toMatchObject({ deadline_exceeded: 1, ok: 2 });
    expect(stats.methods.waitShort).toMatchObject({ calls: 1, failures: 1 });
    expect(stats.requests.inFlight).toBe(0);
  });
});
