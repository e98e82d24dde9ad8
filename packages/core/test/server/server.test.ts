import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Server, TransportUnavailableError, rawCodec } from '@kmux/core';
import {
  HANDLERS,
  RawConnection,
  capturingLogger,
  cleanup,
  gateTag,
  rejection,
  release,
  startServer,
  started,
  track,
} from '../helpers.js';

afterEach(cleanup);

describe('graceful close()', () => {
  it('finishes in-flight requests, refuses new connections and requests, then resolves', async () => {
    const { server, client, port } = await startServer();
    const tag = gateTag('inflight');
    const inflight = client.call('wait', tag);
    await started(tag);

    let closed = false;
    const closing = server.close({ timeoutMs: 10_000 }).then(() => {
      closed = true;
    });
    await expect(RawConnection.open(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const refused = await rejection(client.call('echo', 'new request'));
    expect(refused.kind).toBe('shutting_down');
    expect(closed).toBe(false);

    release(tag);
    expect((await inflight).toString()).toBe(`released ${tag}`);
    await closing;
    const stats = server.stats();
    expect(stats.requests.outcomes).toEqual({ ok: 1, shutting_down: 1 });
    expect(stats.connections.open).toBe(0);
  });

  it('answers requests still running when its timeout passes with shutting_down, and reports them', async () => {
    const { server, client } = await startServer();
    const tag = gateTag('stuck');
    const stuck = client.call('wait', tag);
    await started(tag);
    const cut = rejection(stuck);
    expect(await server.close({ timeoutMs: 100 })).toEqual({ cutOff: 1 });
    expect((await cut).kind).toBe('shutting_down');
  });

  it('makes a second concurrent close() wait for the shutdown too', async () => {
    const { server, client } = await startServer();
    const tag = gateTag('inflight');
    const order: string[] = [];
    const inflight = client.call('wait', tag).then(() => order.push('reply'));
    await started(tag);
    const first = server.close().then(() => order.push('first close'));
    const second = server.close().then(() => order.push('second close'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    release(tag);
    await Promise.all([inflight, first, second]);
    expect(order[0]).toBe('reply');
  });

  it('resolves for a server that never listened', async () => {
    await new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 1, logger: capturingLogger() }).close();
  });
});

/** Polls count() until it holds one value for 200 ms (5 s at most), and returns it. */
async function steadyCount(count: () => number): Promise<number> {
  let value = count();
  let since = Date.now();
  for (const end = Date.now() + 5_000; Date.now() < end && Date.now() - since < 200; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = count();
    if (now !== value) [value, since] = [now, Date.now()];
  }
  return value;
}

describe('listen()', () => {
  it('stops its workers when listen() fails, so nothing keeps the process alive', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const ports = (): number => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
    // The previous test's workers release their ports after its cleanup returns; count once they are gone.
    const before = await steadyCount(ports);
    const server = track(new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 2, logger: capturingLogger() }));
    try {
      await expect(server.listen({ port: (blocker.address() as AddressInfo).port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // Terminated workers' ports close a little after their threads exit (seen under load: 4 left at once).
      expect(await steadyCount(ports)).toBe(before);
    } finally {
      blocker.close();
    }
  });
});

describe('transport choice', () => {
  it('reports user space, and why KCM, sockmap and native were not taken, when auto', async () => {
    const unstarted = new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 1, logger: capturingLogger() });
    expect(unstarted.transport).toBeNull();

    const { server, logger } = await startServer({ transport: 'auto', workers: 1 });
    const report = server.transport!;
    expect(report).toMatchObject({ name: 'userspace', requested: 'auto' });
    expect(Object.keys(report.notTaken).sort()).toEqual(['kcm', 'native', 'sockmap']);
    for (const reason of Object.values(report.notTaken)) expect(reason).toMatch(/\S{3}/);
    // Logged once, with each reason.
    const { kcm, sockmap, native } = report.notTaken;
    expect(logger.text('info')).toBe(`kmux: transport userspace (kcm: ${kcm}; sockmap: ${sockmap}; native: ${native})`);
  });

  it('fails listen() with the reason when KCM is asked for explicitly, without falling back', async () => {
    const server = track(new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 1, transport: 'kcm', logger: capturingLogger() }));
    const error = await server.listen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportUnavailableError);
    expect(error).toMatchObject({ kind: 'transport_unavailable', message: expect.stringMatching(/^transport 'kcm' is unavailable: .+/) });
    expect(server.transport).toBeNull();
  });
});

describe('options', () => {
  it.each([
    ['workers', { workers: 0 }],
    ['maxFrameBytes', { maxFrameBytes: 2 ** 31 }],
    ['maxInFlight', { maxInFlight: 1.5 }],
    ['methodDeadlines.m', { methodDeadlines: { m: -1 } }],
    ['maxConnectionAgeMs', { maxConnectionAgeMs: 0 }],
    ['maxConnectionAgeMs', { maxConnectionAgeMs: 0x7fffffff }],
  ])('rejects a bad %s', (_, options) => {
    expect(() => new Server({ codec: rawCodec({ handler: HANDLERS }), ...options })).toThrow(RangeError);
  });
});
