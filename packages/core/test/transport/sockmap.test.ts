// The sockmap transport on this host (root: CAP_BPF + CAP_NET_ADMIN): workers read each
// connection's frames from their own sockmap targets and write replies to the TCP socket
// themselves. The same behaviours as the user-space tests, where they apply.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Server, TransportUnavailableError, encodeFrame, rawCodec, type ServerCodec } from '@kmux/core';
import {
  HANDLERS,
  RawConnection,
  cleanup,
  gateTag,
  parseReply,
  rejection,
  release,
  startServer,
  started,
  track,
  until,
} from '../helpers.js';

afterEach(cleanup);

const sockmap = (options: Parameters<typeof startServer>[0] = {}) => startServer({ transport: 'sockmap', ...options });
const openFds = (): number => readdirSync('/proc/self/fd').length;

describe('sockmap transport: requests', () => {
  it('runs on sockmap when asked, and answers 1000 pipelined requests on one connection from both workers', async () => {
    const s = await sockmap();
    expect(s.server.transport).toEqual({ name: 'sockmap', requested: 'sockmap', notTaken: {} });
    const payloads = Array.from({ length: 1000 }, (_, i) => Buffer.from(`req-${i};`.padEnd(10 + ((i * 37) % 3000), 'x')));
    const replies = await Promise.all(payloads.map((p, i) => s.client.call(i % 3 === 0 ? 'asyncEcho' : 'echo', p)));
    replies.forEach((reply, i) => expect(reply.equals(payloads[i]!), `reply ${i}`).toBe(true));
    // The verdict spreads one connection over both workers; each posts a method's tally (shared memory) at its first call.
    const calls = (): number => (s.server.stats().methods.echo?.calls ?? 0) + (s.server.stats().methods.asyncEcho?.calls ?? 0);
    await until(() => calls() === 1000, 'the workers per-method stats');
    const stats = s.server.stats();
    expect(stats.workers.map((w) => w.dispatched)).toEqual([500, 500]);
    expect(stats.requests.received).toBe(1000);
    expect(stats.requests.outcomes.ok).toBe(1000);
    expect(s.server.metrics()).toMatch(/^kmux_requests_total\{outcome="ok"\} 1000$/m);
  });

  it('keeps replies on their own connection with many connections at once', async () => {
    const s = await sockmap();
    const clients = Array.from({ length: 16 }, () => s.newClient());
    await Promise.all(
      clients.map(async (client, c) => {
        const payloads = Array.from({ length: 60 }, (_, i) => Buffer.from(`conn-${c}-req-${i}`.repeat(1 + ((c + i) % 50))));
        const replies = await Promise.all(payloads.map((p) => client.call('echo', p)));
        replies.forEach((reply, i) => expect(reply.equals(payloads[i]!), `connection ${c} reply ${i}`).toBe(true));
      }),
    );
  });

  it('lets fast replies overtake a slow request on the same connection', async () => {
    const s = await sockmap();
    const conn = await RawConnection.open(s.port);
    const tag = gateTag('slow');
    conn.request(1, 'wait', tag);
    await started(tag);
    for (let id = 2; id <= 11; id++) conn.request(id, 'echo', `fast ${id}`);
    await conn.waitReplies(10);
    expect(conn.replies.map((r) => parseReply(r).id).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    release(tag);
    await conn.waitReplies(11);
    expect(parseReply(conn.replies[10]!)).toEqual({ id: 1, payload: `released ${tag}` });
  });

  it('fails only the request whose handler throws or rejects', async () => {
    const s = await sockmap();
    const [a, sync, async, b] = await Promise.allSettled([
      s.client.call('echo', 'a'),
      s.client.call('fail', 'sync'),
      s.client.call('reject', 'async'),
      s.client.call('upper', 'b'),
    ]);
    expect(a).toMatchObject({ status: 'fulfilled', value: Buffer.from('a') });
    expect(b).toMatchObject({ status: 'fulfilled', value: Buffer.from('B') });
    expect(sync).toMatchObject({ status: 'rejected', reason: { kind: 'handler', message: 'boom: sync' } });
    expect(async).toMatchObject({ status: 'rejected', reason: { kind: 'handler', message: 'async boom: async' } });
  });

  it('answers a request past its deadline with deadline_exceeded, in the worker', async () => {
    const s = await sockmap({ methodDeadlines: { waitShort: 150 } });
    const error = await rejection(s.client.call('waitShort', gateTag('late')));
    expect(error).toMatchObject({ kind: 'deadline_exceeded', message: 'waitShort exceeded its 150 ms deadline' });
    await until(() => s.server.stats().requests.outcomes.deadline_exceeded === 1, 'the deadline counted');
  });

  it('answers "overloaded" past maxInFlightPerConnection, counted across both workers', async () => {
    const s = await sockmap({ maxInFlightPerConnection: 2 });
    const tags = [gateTag('hold'), gateTag('hold')];
    const held = tags.map((tag) => s.client.call('wait', tag));
    await Promise.all(tags.map((tag) => started(tag)));
    expect(await rejection(s.client.call('echo', 'one too many'))).toMatchObject({ kind: 'overloaded' });
    for (const tag of tags) release(tag);
    await Promise.all(held);
    expect((await s.client.call('echo', 'room again')).toString()).toBe('room again');
  });
});

/** A `big` request: the reply is `bytes` bytes of 'a'. */
function bigRequest(bytes: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(bytes);
  return payload;
}

describe('sockmap transport: replies through full socket buffers', () => {
  it('never interleaves two workers\' replies on one connection, even when sends are partial', async () => {
    const s = await sockmap({ maxPendingWriteBytes: 256 * 1024 * 1024 });
    const conn = await RawConnection.open(s.port);
    conn.socket.pause(); // the replies pile up: the workers' sends go short and wait for the lock and for room
    const sizes = Array.from({ length: 40 }, (_, i) => 256 * 1024 + i * 7919);
    sizes.forEach((bytes, id) => conn.request(id, 'big', bigRequest(bytes)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    conn.socket.resume();
    await conn.waitReplies(sizes.length);
    const byId = new Map(conn.replies.map((body) => [body.readUInt32BE(0), body]));
    sizes.forEach((bytes, id) => {
      const reply = parseReply(byId.get(id)!);
      expect(reply.payload?.length, `reply ${id}`).toBe(bytes);
      expect(/^a+$/.test(reply.payload!), `reply ${id} intact`).toBe(true);
    });
  });

  it('closes a connection whose client leaves more than maxPendingWriteBytes of replies unread', async () => {
    const s = await sockmap({ maxPendingWriteBytes: 1024 * 1024 });
    const conn = await RawConnection.open(s.port);
    conn.socket.pause();
    for (let id = 0; id < 64; id++) conn.request(id, 'big', bigRequest(512 * 1024));
    await until(() => s.server.stats().connectionErrors.write_backlog === 1, 'write_backlog counted');
    conn.socket.resume();
    await conn.closed;
  });
});

describe('sockmap transport: connections', () => {
  it('closes only the connection that sends a length over maxFrameBytes, and counts it', async () => {
    const s = await sockmap({ maxFrameBytes: 64 * 1024 });
    expect((await s.client.call('echo', 'before')).toString()).toBe('before');
    const bad = await RawConnection.open(s.port);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(64 * 1024 + 1);
    bad.write(length);
    await bad.closed;
    expect((await s.client.call('echo', 'after')).toString()).toBe('after');
    await until(() => s.server.stats().connectionErrors.frame_too_large === 1, 'frame_too_large counted');
  });

  it('closes a connection whose frame is not the protocol, and counts it', async () => {
    const s = await sockmap();
    const bad = await RawConnection.open(s.port);
    bad.write(encodeFrame(Buffer.from([1, 2])));
    await bad.closed;
    await until(() => s.server.stats().connectionErrors.protocol === 1, 'protocol counted');
    expect((await s.client.call('echo', 'fine')).toString()).toBe('fine');
  });

  it('frees everything when peers close: no fd growth over 1000 connect / request / close cycles', async () => {
    const s = await sockmap();
    const cycle = async (i: number) => {
      const conn = await RawConnection.open(s.port);
      conn.request(i, 'echo', `cycle ${i}`);
      await conn.waitReplies(1);
      conn.socket.end();
      await conn.closed;
    };
    for (let i = 0; i < 20; i++) await cycle(i);
    await until(() => s.server.stats().connections.open === 0, 'warm-up connections released');
    const before = openFds();
    for (let i = 0; i < 1000; i++) await cycle(i);
    await until(() => s.server.stats().connections.open === 0, 'all connections released');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(openFds()).toBeLessThanOrEqual(before);
    expect(s.server.stats().connections.accepted).toBe(1020);
  });

  it('still answers what a client sent before half-closing', async () => {
    const s = await sockmap();
    const conn = await RawConnection.open(s.port, { allowHalfOpen: true });
    const tag = gateTag('half-close');
    conn.request(1, 'wait', tag);
    await started(tag);
    conn.socket.end();
    await new Promise((resolve) => setTimeout(resolve, 100));
    release(tag);
    await conn.waitReplies(1);
    expect(parseReply(conn.replies[0]!)).toEqual({ id: 1, payload: `released ${tag}` });
    await conn.closed;
  });

  it('closes a connection idle past idleTimeoutMs', async () => {
    const s = await sockmap({ idleTimeoutMs: 300 });
    const conn = await RawConnection.open(s.port);
    conn.request(1, 'echo', 'x');
    await conn.waitReplies(1);
    await conn.closed;
    expect(s.server.stats().connectionErrors.idle_timeout).toBe(1);
  });

  it('closes the connections of a worker that dies, and serves new ones on its replacement', async () => {
    const s = await sockmap();
    const error = await rejection(s.client.call('exit', gateTag('exit')));
    expect(error.kind).toBe('connection_closed');
    await until(() => s.server.stats().workers.every((w) => w.live) && s.server.stats().connections.open === 0, 'replacement');
    const client = s.newClient();
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => client.call('echo', `again ${i}`)));
    expect(replies.map(String)).toEqual(Array.from({ length: 20 }, (_, i) => `again ${i}`));
    expect(s.server.stats().requests.outcomes.worker_died).toBe(1);
  });

  it('closes gracefully: in-flight requests finish, then connections and workers stop', async () => {
    const s = await sockmap();
    const tag = gateTag('drain');
    const inFlight = s.client.call('wait', tag);
    await started(tag);
    const closed = s.server.close({ timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    release(tag);
    expect((await inFlight).toString()).toBe(`released ${tag}`);
    await closed;
    expect(s.server.stats().connections.open).toBe(0);
  });
});

describe('sockmap transport: selection', () => {
  it('refuses TLS: an explicit sockmap fails at listen() with the reason', async () => {
    const tls = { key: 'unused', cert: 'unused' };
    const explicit = new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 1, transport: 'sockmap', tls, logger: quiet });
    const error = await explicit.listen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportUnavailableError);
    expect((error as Error).message).toBe(
      "transport 'sockmap' is unavailable: KCM and sockmap cannot frame through kTLS: TLS connections are framed in user space or on native",
    );
  });

  it('refuses native for TLS whose records stay in user space (no kTLS here): the reason says why', async () => {
    const tls = { key: 'unused', cert: 'unused' };
    const explicit = new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 1, transport: 'native', tls, logger: quiet });
    const error = await explicit.listen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportUnavailableError);
    expect((error as Error).message).toMatch(/^transport 'native' is unavailable: TLS records stay in user space \(kTLS unavailable: .+\): native reads only kTLS sockets$/);
  });

  it('refuses a codec whose worker half cannot answer errors', async () => {
    const codec: ServerCodec = {
      name: 'test',
      peek: (body) => ({ id: body.readUInt32BE(0), method: 'op', oneway: false }),
      errorReply: (head) => Buffer.from([head.id]),
      worker: { module: fileURLToPath(new URL('../fixtures/test-codec.mjs', import.meta.url)), options: { suffix: '' } },
    };
    const server = track(new Server({ codec, workers: 1, transport: 'sockmap', logger: quiet }));
    await expect(server.listen()).rejects.toThrow(
      "transport 'sockmap' is unavailable: codec test cannot answer errors in workers (its worker half has no errorReply)",
    );
  });

  it('fails with the reason when kmux lacks CAP_BPF and CAP_NET_ADMIN', async () => {
    const script = fileURLToPath(new URL('../fixtures/listen-sockmap.mjs', import.meta.url));
    const { stdout } = await promisify(execFile)('setpriv', [
      '--bounding-set',
      '-bpf,-net_admin,-sys_admin,-perfmon',
      '--inh-caps',
      '-all',
      process.execPath,
      script,
      HANDLERS,
    ]);
    expect(stdout.trim()).toMatch(/^TransportUnavailableError: transport 'sockmap' is unavailable: .*EPERM/);
  });
});

const quiet = { info() {}, warn() {}, error() {} };
