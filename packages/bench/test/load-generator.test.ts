import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runLoad, type LoadSpec } from '../src/load/load-generator.js';
import { ReplyScanner } from '../src/load/reply-scanner.js';
import { encodeCall } from '../src/load/request-template.js';
import { MessageType } from '../src/load/thrift-wire.js';
import { catalogService } from '../src/service/catalog.js';

/**
 * A fake server that answers every CALL frame with the same frame retyped: enough for the
 * generator, which reads only the reply's type and seqid. `reply` can tamper with it.
 */
async function fakeServer(reply: (type: number, seqid: number) => [number, number]): Promise<Server> {
  const server = createServer((socket) => {
    let pending: Buffer[] = [];
    const scanner = new ReplyScanner((type, seqid) => {
      const [replyType, replySeqid] = reply(type, seqid);
      const frame = Buffer.alloc(4 + 12 + 4);
      frame.writeUInt32BE(frame.length - 4, 0);
      frame.writeUInt32BE((0x80010000 | replyType) >>> 0, 4);
      frame.writeInt32BE(4, 8);
      frame.write('echo', 12);
      frame.writeInt32BE(replySeqid, 16);
      pending.push(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      scanner.push(chunk);
      // Answer out of order, as a multi-worker server does.
      socket.write(Buffer.concat(pending.reverse()));
      pending = [];
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

function spec(port: number): LoadSpec {
  return {
    host: '127.0.0.1',
    port,
    connections: 3,
    depth: 5,
    warmupSeconds: 0.1,
    durationSeconds: 0.3,
    drainTimeoutMs: 1000,
    templates: [
      encodeCall(catalogService.Client, { method: 'echo', args: [Buffer.alloc(64)], weight: 2 }),
      encodeCall(catalogService.Client, { method: 'sleep', args: [1] }),
    ],
  };
}

describe('runLoad', () => {
  it('counts every reply, per template, with nothing lost', async () => {
    server = await fakeServer((_type, seqid) => [MessageType.REPLY, seqid]);
    const result = await runLoad(spec((server.address() as AddressInfo).port));
    expect(result.fatal).toBeNull();
    expect(result.lost).toBe(0);
    expect(result.errors).toBe(0);
    expect(result.requests).toBeGreaterThan(0);
    const [echo, sleep] = result.perTemplate;
    expect(echo!.requests + sleep!.requests).toBe(result.requests);
    // Weights 2:1, give or take the requests in flight when the window closed.
    expect(echo!.requests / sleep!.requests).toBeGreaterThan(1.5);
    expect(echo!.requests / sleep!.requests).toBeLessThan(2.5);
  });

  it('counts EXCEPTION replies as errors', async () => {
    server = await fakeServer((_type, seqid) => [MessageType.EXCEPTION, seqid]);
    const result = await runLoad(spec((server.address() as AddressInfo).port));
    expect(result.fatal).toBeNull();
    expect(result.errors).toBe(result.requests);
  });

  it('aborts on a reply whose seqid was never sent', async () => {
    server = await fakeServer((_type, seqid) => [MessageType.REPLY, seqid + 1]);
    const result = await runLoad(spec((server.address() as AddressInfo).port));
    expect(result.fatal).toMatch(/matches no request in flight/);
  });
});
