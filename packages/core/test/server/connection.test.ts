import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, RawConnection, gateTag, parseReply, release, startServer, started } from '../helpers.js';

afterEach(cleanup);

const sizePayload = (bytes: number): Buffer => {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(bytes);
  return payload;
};

describe('half-close', () => {
  it('answers every request sent before the client ended its side, then closes', async () => {
    const { port } = await startServer();
    const conn = await RawConnection.open(port, { allowHalfOpen: true });
    for (let id = 1; id <= 20; id++) conn.request(id, 'echo', `r${id}`);
    conn.socket.end();
    const replies = await conn.waitReplies(20);
    expect(replies.map((r) => parseReply(r).id).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await conn.closed;
  });

  it('still writes a reply that finishes long after the client ended its side', async () => {
    const { port, client } = await startServer();
    const conn = await RawConnection.open(port, { allowHalfOpen: true });
    const tag = gateTag('late');
    conn.request(1, 'echo', 'early');
    conn.request(2, 'wait', tag);
    conn.socket.end();
    await started(tag);
    await conn.waitReplies(1);
    // Let the server see the FIN (a round trip on another connection), then finish the request.
    await client.call('echo', 'tick');
    release(tag);
    const replies = await conn.waitReplies(2);
    expect(parseReply(replies[1]!)).toEqual({ id: 2, payload: `released ${tag}` });
    await conn.closed;
  });

  it('still writes the error reply of a request that outlives its deadline after the client ended its side', async () => {
    const { port } = await startServer({ methodDeadlines: { waitShort: 100 } });
    const conn = await RawConnection.open(port, { allowHalfOpen: true });
    const tag = gateTag('expires');
    conn.request(1, 'waitShort', tag);
    conn.socket.end();
    const [reply] = await conn.waitReplies(1);
    expect(parseReply(reply!).error?.kind).toBe('deadline_exceeded');
    await conn.closed;
  });
});

describe('backpressure', () => {
  it('stops reading requests from a client that does not read its replies, and loses nothing', async () => {
    const { server, port, client } = await startServer({ maxPendingWriteBytes: 256 * 1024 });
    const conn = await RawConnection.open(port);
    conn.socket.pause();
    // 12 MiB of replies: more than the kernel buffers plus maxPendingWriteBytes can hold.
    const firstWave = 48;
    for (let id = 0; id < firstWave; id++) conn.request(id, 'big', sizePayload(256 * 1024));
    await expect.poll(() => server.stats().requests.received, { timeout: 10_000 }).toBe(firstWave);
    await expect.poll(() => server.stats().requests.inFlight, { timeout: 10_000 }).toBe(0);

    // Now the server has stopped reading this connection: 2 MiB more requests stay in the
    // socket buffers, while the server keeps serving others.
    const secondWave = 512;
    const padding = Buffer.alloc(4096, 0x70);
    for (let id = firstWave; id < firstWave + secondWave; id++) conn.request(id, 'echo', padding);
    for (let i = 0; i < 5; i++) await client.call('echo', 'the server loop turns');
    const received = server.stats().requests.received;
    // A few reads' worth may slip in before the stream stops; nowhere near all of them.
    expect(received - firstWave).toBeLessThan(secondWave / 4);

    conn.socket.resume();
    const replies = await conn.waitReplies(firstWave + secondWave);
    const byId = new Map(replies.map((r) => [parseReply(r).id, r]));
    expect(byId.size).toBe(firstWave + secondWave);
    expect(byId.get(0)!.length).toBe(5 + 256 * 1024);
    expect(byId.get(firstWave + secondWave - 1)!.length).toBe(5 + 4096);
    expect(server.stats().requests.dropped).toBe(0);
  });

  it('keeps serving a connection when maxPendingWriteBytes is below the socket high-water mark', async () => {
    const { client } = await startServer({ maxPendingWriteBytes: 1024 });
    const payload = Buffer.alloc(500, 0x61);
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => client.call('echo', payload, { timeoutMs: 3000 })));
      for (const result of results) expect(result, `round ${round}`).toEqual({ status: 'fulfilled', value: payload });
    }
  });
});
