// The server-wide byte budget (maxBufferedBytes): many connections together cannot make
// the server hold more than about the budget, whether in partial frames or in replies a
// client does not read. Past it, connections holding bytes stop being read and new
// requests are answered "overloaded" (counted); once the bytes are gone, service resumes.
//
// The budget is the user-space transport's: on KCM and sockmap partial frames wait in the
// kernel's stream parser (bounded per socket by its receive buffer, and in time by
// frameTimeoutMs through SO_RCVTIMEO) and each connection's unsent replies by
// maxPendingWriteBytes; the last case checks that the process holds none of those bytes.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeRawRequest, type Server } from '@kmux/core';
import { TRANSPORTS, report, timeoutMs } from './lib/mode.js';
import { MiB, closeAll, rss, startServer, until } from './lib/harness.js';
import { OpenSockets, WIRES } from './lib/wire.js';

const wire = WIRES.raw;
const sockets = new OpenSockets();
const { open } = sockets;
afterEach(() => sockets.destroyAll());
afterAll(closeAll);

/** One request on a fresh connection; resolves with its decoded reply. */
async function call(port: number, id: number, payload: string): Promise<ReturnType<typeof wire.decode>> {
  const socket = await open(port);
  const reply = new Promise<Buffer>((resolve) => (socket.onFrame = resolve));
  socket.write(encodeFrame(wire.work(id, Buffer.from(payload))));
  const decoded = wire.decode(await reply);
  socket.destroy();
  return decoded;
}

function buffers(server: Server) {
  const stats = server.stats().buffers;
  if (!stats) throw new Error('the transport reports no byte budget');
  return stats;
}

for (const transport of TRANSPORTS.filter((name) => name === 'userspace')) {
  describe(`maxBufferedBytes over ${transport}`, () => {
    it(
      'partial frames of many connections: held near the budget, the holders paused, new requests shed "overloaded", all freed at frameTimeoutMs',
      async () => {
        const budget = 1 * MiB;
        const frameBytes = 256 * 1024;
        // Long enough for the checks below on a busy machine: the holders must still be there.
        const frameTimeout = 5000;
        const { server, port } = await startServer(wire, transport, { maxBufferedBytes: budget, maxFrameBytes: frameBytes, frameTimeoutMs: frameTimeout });
        expect(await call(port, 1, 'before')).toMatchObject({ id: 1, ok: true });
        // 16 × 200 KiB of frames that never complete: 3.2 MiB offered against 1 MiB.
        const part = Buffer.alloc(4 + 200 * 1024, 0x62);
        part.writeUInt32BE(frameBytes, 0);
        const holders = await Promise.all(Array.from({ length: 16 }, () => open(port)));
        for (const holder of holders) holder.write(part);
        await until(() => buffers(server).pausedConnections > 0 && buffers(server).bytes > budget, 'the budget to be spent and holders paused');

        const shed = await call(port, 2, 'during');
        expect(shed).toMatchObject({ id: 2, ok: false, kind: 'overloaded' });
        expect(shed.message).toContain(`maxBufferedBytes ${budget}`);
        expect(buffers(server).shed).toBe(1);
        expect(server.stats().requests.outcomes.overloaded).toBe(1);
        // Each connection paused may have taken one more read (≤ 64 KiB) past the budget.
        const held = buffers(server);
        expect(held.peak).toBeLessThanOrEqual(budget + holders.length * 64 * 1024);
        expect(held.peak).toBeLessThan(holders.length * part.length);

        // A paused connection is not read, so even its client leaving goes unseen; the frame
        // clock runs on and reclaims the bytes.
        await until(() => server.stats().connections.open === holders.length, 'only the holders left');
        await until(() => server.stats().connections.open === 0, 'the holders to be dropped', frameTimeout + 10_000);
        expect(server.stats().connectionErrors).toEqual({ frame_timeout: holders.length });
        expect(buffers(server)).toMatchObject({ bytes: 0, pausedConnections: 0 });
        expect(await call(port, 3, 'after')).toMatchObject({ id: 3, ok: true });
        report('memory-budget', { transport, case: 'partial frames', maxBufferedBytes: budget, offeredBytes: holders.length * part.length, peakBytes: held.peak, paused: held.pauses });
      },
      timeoutMs(30_000),
    );

    it(
      'replies a client does not read: it stops being read once the budget is spent, although its own maxPendingWriteBytes is far away',
      async () => {
        const budget = 2 * MiB;
        const replyBytes = 64 * 1024;
        const { server, port } = await startServer(wire, transport, {
          maxBufferedBytes: budget,
          maxFrameBytes: 64 * 1024,
          maxPendingWriteBytes: 256 * MiB,
          maxInFlightPerConnection: 64,
          idleTimeoutMs: 1000,
        });
        // 65,536 requests of 1 KiB for 4 GiB of replies in all. How many are read before the
        // budget is spent is a race, not a bound: until ~2 MiB of replies wait beyond what the
        // kernel's socket buffers took, the connection is read as fast as the main thread
        // can, and all but the 64 in flight are answered "overloaded" (tiny replies). 2,000 to
        // 22,000 were read in runs on a loaded 2-core machine, with and without the reply
        // backlog; what the budget promises is that reading stops and the bytes stay bounded.
        // Encoded before connecting: on a loaded machine that took longer than idleTimeoutMs.
        const size = Buffer.alloc(1024);
        size.writeUInt32BE(replyBytes);
        const count = 65_536;
        const requests = Buffer.concat(Array.from({ length: count }, (_, i) => encodeFrame(encodeRawRequest(i + 1, 'big', size))));
        const reader = await open(port);
        reader.socket.pause(); // never reads a reply
        reader.write(requests);
        await until(() => buffers(server).pausedConnections === 1, 'the non-reader to be paused for the budget');
        await until(() => server.stats().requests.inFlight === 0, 'the requests it read to finish');
        const peak = buffers(server).peak;
        // The budget plus the replies to what was in flight (up to the bound of 64) and one read.
        expect(peak).toBeLessThan(budget + 64 * replyBytes + 1 * MiB);
        // Paused for good: nothing more is read while its replies wait, though most requests are unread.
        const read = server.stats().requests.received;
        expect(read).toBeLessThan(count);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(server.stats().requests.received).toBe(read);

        // Dropped when idle, and its bytes are freed.
        await until(() => server.stats().connectionErrors.idle_timeout === 1, 'the idle drop', 15_000);
        expect(buffers(server)).toMatchObject({ bytes: 0, pausedConnections: 0 });
        expect(await call(port, 1, 'after')).toMatchObject({ id: 1, ok: true });
        report('memory-budget', { transport, case: 'unread replies', maxBufferedBytes: budget, repliesAskedMb: (count * replyBytes) / MiB, requestsRead: server.stats().requests.received - 1, peakBytes: peak });
      },
      timeoutMs(40_000),
    );
  });
}

for (const transport of TRANSPORTS.filter((name) => name !== 'userspace')) {
  describe(`partial frames over ${transport}`, () => {
    it(
      'are held by the kernel, not the process, and dropped at frameTimeoutMs (the parser times out), counted as frame_timeout',
      async () => {
        const frameBytes = 2 * MiB;
        const frameTimeout = 3000;
        const { server, port } = await startServer(wire, transport, { maxFrameBytes: frameBytes, frameTimeoutMs: frameTimeout, idleTimeoutMs: 60_000 });
        expect(await call(port, 1, 'before')).toMatchObject({ id: 1, ok: true });
        expect(server.stats().buffers).toBeUndefined();
        const rss0 = rss();
        const part = Buffer.alloc(4 + MiB, 0x62);
        part.writeUInt32BE(frameBytes, 0);
        const holders = await Promise.all(Array.from({ length: 32 }, () => open(port)));
        await Promise.all(holders.map((holder) => new Promise((resolve) => holder.socket.write(part, resolve))));
        const growth = rss() - rss0;
        // 32 MiB of partial frames sent: next to nothing of it in this process.
        expect(growth).toBeLessThan(16 * MiB);
        expect(await call(port, 2, 'during')).toMatchObject({ id: 2, ok: true });
        await until(() => server.stats().connections.open === 0, 'the holders to be dropped', frameTimeout + 30_000);
        expect(server.stats().connectionErrors).toEqual({ frame_timeout: holders.length });
        report('memory-budget', { transport, case: 'partial frames held by the kernel', offeredBytes: holders.length * part.length, rssGrowthMb: Number((growth / MiB).toFixed(1)) });
      },
      timeoutMs(60_000),
    );
  });
}
