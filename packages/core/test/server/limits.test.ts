import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeRawRequest } from '@kmux/core';
import { RawConnection, cleanup, gateTag, parseReply, rejection, release, startServer, started, until } from '../helpers.js';

afterEach(cleanup);

describe('in-flight bounds', () => {
  it('answers "overloaded" past maxInFlightPerConnection while earlier requests still succeed', async () => {
    const { server, client, newClient } = await startServer({ maxInFlightPerConnection: 2 });
    const tags = [gateTag('a'), gateTag('b')];
    const held = tags.map((tag) => client.call('wait', tag));
    await Promise.all(tags.map(started));

    const error = await rejection(client.call('echo', 'third'));
    expect(error.kind).toBe('overloaded');
    expect(error.message).toContain('connection in-flight limit 2');
    // Another connection has its own budget.
    expect((await newClient().call('echo', 'elsewhere')).toString()).toBe('elsewhere');

    for (const tag of tags) release(tag);
    expect((await Promise.all(held)).map(String)).toEqual(tags.map((t) => `released ${t}`));
    expect((await client.call('echo', 'room again')).toString()).toBe('room again');
    expect(server.stats().requests.outcomes).toMatchObject({ overloaded: 1, ok: 4 });
  });

  it('answers "overloaded" past maxInFlight to a connection holding its fair share', async () => {
    const { server, client, newClient } = await startServer({ maxInFlight: 2 });
    const tags = [gateTag('a'), gateTag('b')];
    const held = tags.map((tag) => client.call('wait', tag));
    await Promise.all(tags.map(started));

    // Two connections open: a share is 1, and `client` holds 2.
    const other = newClient();
    const error = await rejection(client.call('echo', 'x'));
    expect(error).toMatchObject({ kind: 'overloaded', message: expect.stringContaining('server in-flight limit 2') });
    expect(server.stats().methods.echo).toMatchObject({ calls: 1, failures: 1 });
    expect((await other.call('echo', 'y')).toString()).toBe('y');

    release(tags[0]!);
    await held[0];
    expect((await client.call('echo', 'z')).toString()).toBe('z');
    release(tags[1]!);
    await held[1];
  });

  it('refuses a pipelined burst past the bound until its refusal credit is spent, then reads it only as half of what is in flight finishes', async () => {
    const { server, port } = await startServer({ maxInFlightPerConnection: 4 });
    const conn = await RawConnection.open(port);
    const tags = [0, 1, 2, 3].map((i) => gateTag(`hold${i}`));
    const frame = (id: number, method: string, payload: string) => encodeFrame(encodeRawRequest(id, method, Buffer.from(payload)));
    const outcomes = () =>
      conn.replies
        .map((r) => parseReply(r))
        .filter((r) => r.id >= 10)
        .sort((a, b) => a.id - b.id)
        .map((r) => `${r.id} ${r.error?.kind ?? r.payload}`);
    // One write, so one read: four held requests fill the bound, 24 echoes follow.
    conn.write(Buffer.concat([...tags.map((tag, i) => frame(i, 'wait', tag)), ...Array.from({ length: 24 }, (_, i) => frame(10 + i, 'echo', `e${i}`))]));
    await Promise.all(tags.map(started));
    // Its first allowance, 4 refusals per place (16), spent: pushed back, the other 8 wait unread.
    await conn.waitReplies(16);
    expect(outcomes()).toEqual(Array.from({ length: 16 }, (_, i) => `${10 + i} overloaded`));
    release(tags[0]!);
    await conn.waitReplies(17);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(conn.replies.length).toBe(17);
    expect(server.stats().requests.received).toBe(20);
    // Down to half (2): the held frames go on in order: two fit, the rest is refused on the credit
    // the two answers earned (4 each), and reading resumes.
    release(tags[1]!);
    await conn.waitReplies(26);
    expect(outcomes().slice(16)).toEqual(['26 e16', '27 e17', ...Array.from({ length: 6 }, (_, i) => `${28 + i} overloaded`)]);
    for (const tag of tags.slice(2)) release(tag);
    await conn.waitReplies(28);
    expect(server.stats().requests.outcomes).toMatchObject({ ok: 6, overloaded: 22 });
    conn.request(40, 'echo', 'read again');
    await conn.waitReplies(29);
    expect(parseReply(conn.replies[28]!)).toEqual({ id: 40, payload: 'read again' });
  });
});

describe('connection limits', () => {
  it('refuses connections beyond maxConnections and counts them', async () => {
    const { server, port, client } = await startServer({ maxConnections: 2 });
    await client.connect();
    const second = await RawConnection.open(port);
    await until(() => server.stats().connections.open === 2, 'two open connections');

    const third = await RawConnection.open(port);
    await third.closed;
    expect(third.replies).toEqual([]);
    await expect.poll(() => server.stats().connections).toEqual({ open: 2, accepted: 2, rejected: 1, aged: 0 });

    // The accepted ones keep working; a slot freed is a slot taken again.
    expect((await client.call('echo', 'one')).toString()).toBe('one');
    second.request(9, 'echo', 'two');
    expect(parseReply((await second.waitReplies(1))[0]!)).toEqual({ id: 9, payload: 'two' });
    second.socket.destroy();
    await until(() => server.stats().connections.open === 1, 'one open connection');
    const fourth = await RawConnection.open(port);
    fourth.request(1, 'echo', 'four');
    expect(parseReply((await fourth.waitReplies(1))[0]!).payload).toBe('four');
    expect(server.stats().connections.rejected).toBe(1);
  });

  it('closes only the connection that sends an oversized length prefix, on the header alone', async () => {
    const { server, port, client, logger } = await startServer({ maxFrameBytes: 1024 });
    expect((await client.call('echo', 'before')).toString()).toBe('before');
    const bad = await RawConnection.open(port);
    bad.write(Buffer.from([0, 0, 0x04, 0x01])); // 1025: just the header, no body follows
    await bad.closed;
    await expect.poll(() => server.stats().connectionErrors).toEqual({ frame_too_large: 1 });
    expect(logger.text('warn')).toContain('frame length 1025 exceeds maxFrameBytes 1024');

    // The other client is unaffected, and a frame of exactly the limit is fine.
    const exact = Buffer.alloc(1024 - 5 - 'echo'.length, 0x7a);
    expect(encodeRawRequest(1, 'echo', exact).length).toBe(1024);
    expect((await client.call('echo', exact)).equals(exact)).toBe(true);
    expect(server.stats().connections.open).toBe(1);
  });

  it('closes a connection sending a frame the codec cannot read, and counts it as a protocol error', async () => {
    const { server, port, client } = await startServer();
    await client.connect();
    for (const garbage of [Buffer.from([1, 2]), Buffer.from([0, 0, 0, 1, 200, 0x61])]) {
      const bad = await RawConnection.open(port);
      bad.write(encodeFrame(garbage));
      bad.request(2, 'echo', 'never read');
      await bad.closed;
      expect(bad.replies).toEqual([]);
    }
    await expect.poll(() => server.stats().connectionErrors).toEqual({ protocol: 2 });
    expect((await client.call('echo', 'still')).toString()).toBe('still');
  });

  it('runs nothing that follows an unreadable frame, even in the same read', async () => {
    const { server, port } = await startServer();
    const bad = await RawConnection.open(port);
    // One write, so one chunk on the server: garbage, then a well-formed request.
    bad.write(Buffer.concat([encodeFrame(Buffer.from([1, 2])), encodeFrame(encodeRawRequest(1, 'echo', Buffer.from('after')))]));
    await bad.closed;
    await expect.poll(() => server.stats().connectionErrors.protocol).toBe(1);
    const stats = server.stats();
    expect(stats.methods.echo).toBeUndefined();
    expect(stats.workers.map((w) => w.dispatched)).toEqual([0, 0]);
  });

  it('closes an idle connection, but not one waiting for a reply', async () => {
    const { server, port } = await startServer({ idleTimeoutMs: 150 });
    // busy's last activity comes before idle's first, so its idle timer fires first.
    const busy = await RawConnection.open(port);
    const tag = gateTag('slow');
    busy.request(1, 'wait', tag);
    await started(tag);
    const idle = await RawConnection.open(port);
    await idle.closed;
    await expect.poll(() => server.stats().connectionErrors.idle_timeout).toBe(1);
    expect(busy.socket.destroyed).toBe(false);

    release(tag);
    expect(parseReply((await busy.waitReplies(1))[0]!)).toEqual({ id: 1, payload: `released ${tag}` });
    // Idle again after its reply: closed in turn.
    await busy.closed;
    await expect.poll(() => server.stats().connections.open).toBe(0);
    expect(server.stats().connectionErrors.idle_timeout).toBe(2);
  });
});
