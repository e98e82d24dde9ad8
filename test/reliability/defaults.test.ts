// Every limit has a safe default: finite, documented, and enforced with no option set.
// packages/core/test covers each limit's mechanism with small values (see the table in
// README.md); this file pins the defaults themselves and checks the cheap ones end to end
// on a server started with no limits at all.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SOCKMAP_MAX_FRAME_BYTES, Server, TransportUnavailableError, encodeFrame, encodeRawRequest, type ServerOptions } from '@kmux/core';
// Not exported by @kmux/core: the function the Server itself resolves its options with.
import { resolveServerOptions } from '../../packages/core/dist/server/options.js';
import { TRANSPORTS, timeoutMs } from './lib/mode.js';
import { closeAll, held, listenForGates, release, startServer, until } from './lib/harness.js';
import { OpenSockets, WIRES, type FrameSocket } from './lib/wire.js';

const wire = WIRES.raw;
const sockets = new OpenSockets();
const { open } = sockets;
afterEach(() => {
  release('*');
  sockets.destroyAll();
});
afterAll(closeAll);

const DOCUMENTED: Record<string, number> = {
  maxFrameBytes: 16 * 1024 * 1024,
  maxConnections: 10_000,
  maxInFlightPerConnection: 1024,
  maxInFlight: 16_384,
  workerQueueDepth: 32,
  busyWorkerGraceUs: 50,
  deadlineMs: 30_000,
  idleTimeoutMs: 120_000,
  maxPendingWriteBytes: 8 * 1024 * 1024,
  frameTimeoutMs: 30_000,
  maxBufferedBytes: 256 * 1024 * 1024,
};

describe('limit defaults', () => {
  const resolved = resolveServerOptions({ codec: wire.serverCodec() }) as unknown as Record<string, unknown>;

  it('gives every limit its documented, finite default', () => {
    for (const [name, value] of Object.entries(DOCUMENTED)) expect(resolved[name], name).toBe(value);
    // Any numeric limit added later must have a finite positive default too.
    for (const [name, value] of Object.entries(resolved)) {
      if (typeof value === 'number') expect(Number.isSafeInteger(value) && value > 0, `${name} = ${value}`).toBe(true);
    }
    expect(resolved.maxInFlightPerConnection as number).toBeLessThanOrEqual(resolved.maxInFlight as number);
    expect(resolved.methodDeadlines).toEqual({});
  });

  it('keeps maxBufferedBytes able to hold one frame of maxFrameBytes, and timeouts within what a timer can wait', () => {
    const codec = wire.serverCodec();
    expect(resolveServerOptions({ codec, maxFrameBytes: 512 * 1024 * 1024 }).maxBufferedBytes).toBe(512 * 1024 * 1024);
    expect(() => resolveServerOptions({ codec, maxFrameBytes: 1024, maxBufferedBytes: 1023 })).toThrow(/maxBufferedBytes/);
    for (const name of ['deadlineMs', 'idleTimeoutMs', 'frameTimeoutMs']) {
      expect(() => resolveServerOptions({ codec, [name]: 2 ** 31 } as ServerOptions), name).toThrow(RangeError);
    }
  });

  it.each(Object.keys(DOCUMENTED))('refuses a %s that is not a positive integer', (name) => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => resolveServerOptions({ codec: wire.serverCodec(), [name]: bad } as ServerOptions), `${name}: ${bad}`).toThrow(RangeError);
    }
  });
});

for (const transport of TRANSPORTS) {
  describe(`default limits enforced over ${transport}, no option set`, () => {
    // sockmap cannot deliver a frame near 4 MiB (SOCKMAP_MAX_FRAME_BYTES says why): its default
    // is lower, and a larger maxFrameBytes fails at listen() rather than hanging connections.
    const frameLimit = transport === 'sockmap' ? SOCKMAP_MAX_FRAME_BYTES : DOCUMENTED.maxFrameBytes!;
    if (transport === 'sockmap') {
      it('maxFrameBytes above what sockmap can deliver fails listen() with the reason', async () => {
        const server = new Server({ codec: wire.serverCodec(), workers: 1, transport, maxFrameBytes: SOCKMAP_MAX_FRAME_BYTES + 1, logger: { info() {}, warn() {}, error() {} } });
        const failure = await server.listen({ host: '127.0.0.1', port: 0 }).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(TransportUnavailableError);
        expect((failure as Error).message).toContain(`maxFrameBytes ${SOCKMAP_MAX_FRAME_BYTES + 1}`);
      });
    }

    it(
      `maxFrameBytes (${frameLimit} bytes by default on ${transport}): a length prefix one above closes the connection on its header; a frame of exactly the limit is served`,
      async () => {
        const { server, port } = await startServer(wire, transport);
        const limit = frameLimit;
        const over = await open(port);
        const header = Buffer.alloc(4);
        header.writeUInt32BE(limit + 1);
        over.write(header);
        await over.ended;
        await until(() => server.stats().connectionErrors.frame_too_large === 1, 'the refusal counted');

        const exact = await open(port);
        const payload = Buffer.alloc(limit - 5 - 'work'.length, 0x7a);
        const request = encodeFrame(encodeRawRequest(1, 'work', payload));
        expect(request.readUInt32BE(0)).toBe(limit);
        const reply = new Promise<Buffer>((resolve) => (exact.onFrame = resolve));
        exact.write(request);
        const decoded = wire.decode(await reply);
        expect(decoded).toMatchObject({ id: 1, ok: true });
        expect(decoded.payload!.length).toBe(payload.length + 3);
      },
      timeoutMs(30_000),
    );

    if (transport === 'kcm' || transport === 'native') {
      // A full KCM worker stops reading, and the backlog waits in the kernel; native's I/O thread
      // sends a worker at most workerQueueDepth and holds the rest: with the default limits that
      // bounds what a connection has in flight long before maxInFlightPerConnection could
      // (docs/transports.md, "Backpressure").
      it(
        `maxInFlightPerConnection (1,024) on ${transport}: the workers hold at most workers × 2 × workerQueueDepth (${2 * 2 * DOCUMENTED.workerQueueDepth!}), the kernel or the I/O thread holds the rest, none is shed and all are answered once`,
        async () => {
          const { server, port } = await startServer(wire, transport);
          listenForGates();
          const count = DOCUMENTED.maxInFlightPerConnection!;
          const bound = 2 * 2 * DOCUMENTED.workerQueueDepth!;
          const tag = `defaults-kcm-${Date.now()}`;
          const socket = await open(port);
          const answered = new Map<number, number>();
          const failures: string[] = [];
          socket.onFrame = (body) => {
            const reply = wire.decode(body);
            if (!reply.ok) failures.push(`id ${reply.id}: ${reply.kind}`);
            answered.set(reply.id, (answered.get(reply.id) ?? 0) + 1);
          };
          socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => encodeFrame(encodeRawRequest(i + 1, 'hold', Buffer.from(tag))))));
          await held(tag);
          // Native sends a busy worker only what fits workerBacklogUs of estimated work (fewer
          // than workerQueueDepth of these): wait for both workers to hold some, not for a count.
          await until(() => server.stats().workers.every((w) => w.inFlight > 0), 'every worker to hold requests');
          // Held long enough for a worker that kept reading to have read far past its bound.
          let most = 0;
          for (const stop = Date.now() + 1000; Date.now() < stop; ) {
            most = Math.max(most, server.stats().requests.inFlight);
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          expect(most).toBeLessThanOrEqual(bound);
          expect(server.stats().requests.received).toBeLessThanOrEqual(bound);
          expect(answered.size).toBe(0);

          // A release reaches only the holds already running: repeat it for those read after it.
          await until(
            () => {
              release(tag);
              return answered.size === count;
            },
            () => `all ${count} answered (now ${answered.size}; server ${JSON.stringify(server.stats().requests)})`,
            60_000,
          );
          expect(failures).toEqual([]);
          expect([...answered.values()].every((n) => n === 1)).toBe(true);
          expect(server.stats().requests.outcomes.overloaded ?? 0).toBe(0);
        },
        timeoutMs(30_000),
      );
      return;
    }

    it(
      'maxInFlightPerConnection (1,024) and maxInFlight (16,384): the first request past each is answered "overloaded"',
      async () => {
        const { server, port } = await startServer(wire, transport);
        listenForGates();
        const perConnection = DOCUMENTED.maxInFlightPerConnection!;
        const connections = DOCUMENTED.maxInFlight! / perConnection;
        const tag = `defaults-${Date.now()}`;
        const holdAll = (socket: FrameSocket): void => {
          socket.write(Buffer.concat(Array.from({ length: perConnection }, (_, i) => encodeFrame(encodeRawRequest(i + 1, 'hold', Buffer.from(tag))))));
        };
        const full: FrameSocket[] = [];
        for (let c = 0; c < connections; c++) {
          const socket = await open(port);
          full.push(socket);
        }
        const first = full[0]!;
        const firstReplies: Buffer[] = [];
        first.onFrame = (body) => firstReplies.push(body);
        holdAll(first);
        await held(tag);
        await until(() => server.stats().requests.inFlight === perConnection, `${perConnection} requests in flight on one connection`);
        // One more on the same connection: past its own bound.
        first.write(encodeFrame(encodeRawRequest(5000, 'work', Buffer.from('x'))));
        await until(() => firstReplies.length === 1, 'the reply past the per-connection bound');
        expect(wire.decode(firstReplies[0]!)).toMatchObject({ id: 5000, ok: false, kind: 'overloaded' });
        expect(wire.decode(firstReplies[0]!).message).toContain(`connection in-flight limit ${perConnection}`);

        for (const socket of full.slice(1)) holdAll(socket);
        await until(() => server.stats().requests.inFlight === DOCUMENTED.maxInFlight, `${DOCUMENTED.maxInFlight} requests in flight`, 20_000);
        // A fresh connection, well within its own bound: past the server's.
        const fresh = await open(port);
        const reply = new Promise<Buffer>((resolve) => (fresh.onFrame = resolve));
        fresh.write(encodeFrame(encodeRawRequest(1, 'work', Buffer.from('y'))));
        // Past maxInFlight only a connection holding its fair share is refused, so the fresh one
        // is served once the holds end, and a greedy one is refused past that share. User space:
        // maxInFlight ÷ open connections, its request share + 1 is the first refused.
        const greedy = await open(port);
        const share = Math.floor(DOCUMENTED.maxInFlight! / (connections + 2));
        const refused = new Promise<Buffer>((resolve) => (greedy.onFrame = resolve));
        greedy.write(Buffer.concat(Array.from({ length: 2 * share }, (_, i) => encodeFrame(encodeRawRequest(i + 1, 'hold', Buffer.from(tag))))));
        const decoded = wire.decode(await refused);
        expect(decoded).toMatchObject({ ok: false, kind: 'overloaded' });
        expect(decoded.message).toContain(`server in-flight limit ${DOCUMENTED.maxInFlight}`);
        // Kernel transports: however the kernel deals its requests, a worker refuses it only once
        // it holds that worker's share (of 2 workers) ÷ connections holding requests there.
        if (transport === 'userspace') expect(decoded.id).toBe(share + 1);
        else expect(decoded.id).toBeGreaterThan(Math.floor(DOCUMENTED.maxInFlight! / 2 / (connections + 2)));
        release('*');
        expect(wire.decode(await reply)).toMatchObject({ id: 1, ok: true });
      },
      timeoutMs(30_000),
    );
  });
}
