// Unframed (buffered-transport) Thrift on the user-space transport: the limits a framed
// client has hold for an unframed one too, and a close is logged with the peer's address.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { startCatalogServer, stockClient, unframedEcho } from './catalog.js';

function open(port: number): Promise<{ socket: Socket; local: string; closed: Promise<unknown> }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => resolve({ socket, local: `127.0.0.1:${socket.localPort}`, closed }));
    const closed = new Promise((done) => socket.on('close', done));
    socket.on('error', () => undefined);
  });
}

describe('unframed thrift on the user-space transport', () => {
  let server: Server;
  let port: number;
  const warnings: string[] = [];
  beforeAll(async () => {
    const logger = { info: () => undefined, warn: (line: string) => warnings.push(line), error: console.error };
    ({ server, port } = await startCatalogServer('binary', { transport: 'userspace', maxFrameBytes: 64 * 1024, frameTimeoutMs: 300, logger }));
  });
  afterAll(() => server.close());

  it('refuses a message declaring more than maxFrameBytes before receiving it, and logs the real peer', async () => {
    const big = unframedEcho('binary', Buffer.alloc(100_000));
    const { socket, local, closed } = await open(port);
    socket.write(big.subarray(0, 64)); // header and the string's length only
    await closed;
    await expect.poll(() => server.stats().connectionErrors.frame_too_large).toBe(1);
    expect(warnings.find((line) => line.includes(local))).toMatch(/closed: frame length 100\d+ exceeds maxFrameBytes 65536/);
    expect(warnings.join('\n')).not.toContain('?:?');
  });

  it('closes a connection whose unframed message does not complete within frameTimeoutMs', async () => {
    const message = unframedEcho('binary', Buffer.alloc(1000, 1));
    const { socket, closed } = await open(port);
    socket.write(message.subarray(0, message.length - 1));
    await closed;
    await expect.poll(() => server.stats().connectionErrors.frame_timeout).toBe(1);
  });

  it('serves the stock buffered client beside them, a message split over many writes included', async () => {
    const { call, close } = stockClient(port, 'binary', 'buffered');
    try {
      expect(await call('echo', Buffer.from('still fine'))).toEqual(Buffer.from('still fine'));
    } finally {
      close();
    }
    const { socket } = await open(port);
    const message = unframedEcho('binary', Buffer.alloc(30_000, 9));
    const reply = new Promise<Buffer>((resolve) => {
      const parts: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => {
        parts.push(chunk);
        const all = Buffer.concat(parts);
        if (all.length >= 30_000) resolve(all);
      });
    });
    for (let at = 0; at < message.length; at += 997) socket.write(message.subarray(at, at + 997));
    // An unframed request gets an unframed reply: a strict binary REPLY header first, no length.
    expect((await reply).readUInt32BE(0)).toBe(0x80010002);
    socket.destroy();
  });
});
