// Health checks a balancer sends without the IDL, as the exact bytes documented in
// docs/thrift-deployment.md, and Finagle's protocol-upgrade probe.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { HEALTH_METHOD, type ThriftProtocolName } from '@kmux/thrift';
import { startCatalogServer, stockClient, thrift } from './catalog.js';
import { startMultiplexedServer } from './multiplexed.js';

/** The documented probe and its answer: framed CALL __kmux_health__, seqid 0, no arguments; REPLY with a void result. */
const PROBE: Record<ThriftProtocolName, { call: string; reply: string }> = {
  binary: {
    call: '0000001c800100010000000f5f5f6b6d75785f6865616c74685f5f0000000000',
    reply: '0000001c800100020000000f5f5f6b6d75785f6865616c74685f5f0000000000',
  },
  compact: {
    call: '000000148221000f5f5f6b6d75785f6865616c74685f5f00',
    reply: '000000148241000f5f5f6b6d75785f6865616c74685f5f00',
  },
};

/** A raw connection that collects what it reads. */
async function rawConnection(port: number): Promise<{ socket: Socket; read: (bytes: number) => Promise<Buffer> }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    for (const wake of waiters.splice(0)) wake();
  });
  const read = async (bytes: number): Promise<Buffer> => {
    while (received.length < bytes) await new Promise<void>((wake) => waiters.push(wake));
    const out = received.subarray(0, bytes);
    received = received.subarray(bytes);
    return out;
  };
  return { socket, read };
}

/** A framed binary CALL with an empty argument struct. */
function framedCall(name: string, seqid: number): Buffer {
  const body = Buffer.alloc(4 + 4 + name.length + 4 + 1);
  let at = body.writeUInt32BE(0x80010001, 0);
  at = body.writeUInt32BE(name.length, at);
  at += body.write(name, at);
  body.writeInt32BE(seqid, at);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/** Reads one framed binary message and decodes it with the thrift library. */
async function readFramedMessage(read: (bytes: number) => Promise<Buffer>) {
  const length = (await read(4)).readUInt32BE(0);
  const input = new thrift.TBinaryProtocol(new thrift.TFramedTransport(await read(length)));
  const head = input.readMessageBegin();
  const exception = new thrift.Thrift.TApplicationException();
  if (head.mtype === thrift.Thrift.MessageType.EXCEPTION) exception.read(input);
  return { head, exception };
}

for (const protocol of ['binary', 'compact'] as const) {
  describe(`${protocol}: the IDL-free health probe`, () => {
    let server: Server;
    let multiplexed: Server;
    let port: number;
    let multiplexedPort: number;
    beforeAll(async () => {
      ({ server, port } = await startCatalogServer(protocol));
      ({ server: multiplexed, port: multiplexedPort } = await startMultiplexedServer(protocol));
    });
    afterAll(() => Promise.all([server.close(), multiplexed.close()]));

    it(`${HEALTH_METHOD}: the documented bytes get the documented reply, framed and unframed, one service or several`, async () => {
      for (const target of [port, multiplexedPort]) {
        const framed = await rawConnection(target);
        framed.socket.write(Buffer.from(PROBE[protocol].call, 'hex'));
        expect((await framed.read(PROBE[protocol].reply.length / 2)).toString('hex')).toBe(PROBE[protocol].reply);
        framed.socket.destroy();
        const unframed = await rawConnection(target);
        unframed.socket.write(Buffer.from(PROBE[protocol].call.slice(8), 'hex'));
        expect((await unframed.read(PROBE[protocol].reply.length / 2 - 4)).toString('hex')).toBe(PROBE[protocol].reply.slice(8));
        unframed.socket.destroy();
      }
    });
  });
}

describe('binary: probes while draining, and Finagle', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    ({ server, port } = await startCatalogServer('binary'));
  });
  afterAll(() => server.close());

  it("Finagle's __can__finagle__trace__v3__ probe gets UNKNOWN_METHOD, and the connection stays usable", async () => {
    const { socket, read } = await rawConnection(port);
    socket.write(framedCall('__can__finagle__trace__v3__', 1));
    const { head, exception } = await readFramedMessage(read);
    expect(head).toMatchObject({ fname: '__can__finagle__trace__v3__', mtype: thrift.Thrift.MessageType.EXCEPTION, rseqid: 1 });
    expect(exception.type).toBe(thrift.Thrift.TApplicationExceptionType.UNKNOWN_METHOD);
    socket.write(Buffer.from(PROBE.binary.call, 'hex'));
    expect((await read(PROBE.binary.reply.length / 2)).toString('hex')).toBe(PROBE.binary.reply);
    socket.destroy();
  });

  it('answers the probe with a "shutting down" exception once a drain has begun', async () => {
    const { socket, read } = await rawConnection(port);
    const { call, close } = stockClient(port, 'binary');
    const slow = call('sleep', 800);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = server.close({ timeoutMs: 5000 });
    socket.write(Buffer.from(PROBE.binary.call, 'hex'));
    const { head, exception } = await readFramedMessage(read);
    expect(head.mtype).toBe(thrift.Thrift.MessageType.EXCEPTION);
    expect(exception.message).toMatch(/^shutting down/);
    expect(await slow).toBe(800); // the drain still finishes what was in flight
    close();
    socket.destroy();
    await closed;
  });
});
