// Deterministic cases of what the end-to-end fuzzer (test/fuzz/server.test.ts) found, so a
// regression shows up by name rather than by seed (bugs 1 and 2 in test/reliability/README.md).
import { afterAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '@kmux/core';
import { TRANSPORTS } from './lib/mode.js';
import { closeAll, startServer, until } from './lib/harness.js';
import { FrameSocket, WIRES } from './lib/wire.js';

afterAll(closeAll);

for (const transport of TRANSPORTS) {
  describe(`hostile frames found by fuzzing, over ${transport}`, () => {
    it('counts a connection closed for an unreadable frame as a protocol error, even when an oversized length follows in the same read', async () => {
      const { server, port, logger } = await startServer(WIRES.raw, transport, { maxFrameBytes: 1024 });
      const socket = await FrameSocket.open(port);
      // One write, so one read on the server: a frame too short for a raw head, then a length above the limit.
      socket.write(Buffer.concat([encodeFrame(Buffer.from([1, 2])), Buffer.from([0xff, 0xff, 0xff, 0xff])]));
      await socket.ended;
      await until(() => server.stats().connections.open === 0, 'the connection to close');
      if (transport === 'userspace') {
        // The first thing wrong with the stream is why it was closed.
        expect(server.stats().connectionErrors).toEqual({ protocol: 1 });
        expect(logger.lines.join('\n')).toContain('raw request frame too short');
      } else {
        // On KCM and sockmap the kernel parser reports the length at once, while the frame before
        // it waits for a worker to read its head: either may close it first, and it is counted once.
        expect([{ protocol: 1 }, { frame_too_large: 1 }]).toContainEqual(server.stats().connectionErrors);
      }
      socket.destroy();
    });

    for (const protocol of ['binary', 'compact'] as const) {
      it(`${protocol}: sends no reply to a oneway message, even one naming a two-way method`, async () => {
        const wire = WIRES[`thrift-${protocol}`];
        const { server, port } = await startServer(wire, transport);
        const socket = await FrameSocket.open(port);
        const replies: number[] = [];
        socket.onFrame = (body) => replies.push(wire.decode(body).id);
        const oneway = wire.work(5, Buffer.from('fire and forget'));
        if (protocol === 'binary') oneway[3] = 4; // message type ONEWAY
        else oneway[1] = (4 << 5) | 1;
        socket.write(Buffer.concat([encodeFrame(oneway), encodeFrame(wire.work(6, Buffer.from('answer me')))]));
        socket.end();
        await socket.ended;
        expect(replies).toEqual([6]);
        expect(server.stats().requests.received).toBe(2);
        socket.destroy();
      });
    }
  });
}
