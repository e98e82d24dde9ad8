import { once } from 'node:events';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, FrameSplitter, NOT_RUN_SHUTTING_DOWN, RAW_STATUS, decodeRawReply, encodeFrame, rawClientCodec } from '@kmux/core';
import { cleanup, rejection, startServer, until } from '../helpers.js';

/** A hand-driven peer: collects request frames per connection and lets the test answer them. */
class FakeServer {
  readonly connections: { socket: Socket; frames: Buffer[] }[] = [];
  private readonly server: NetServer;

  private constructor() {
    this.server = createServer((socket) => {
      const connection = { socket, frames: [] as Buffer[] };
      const splitter = new FrameSplitter(1 << 20);
      socket.on('data', (chunk) => splitter.push(chunk, (body) => connection.frames.push(Buffer.from(body))));
      socket.on('error', () => {});
      this.connections.push(connection);
    });
  }

  static async start(): Promise<FakeServer> {
    const fake = new FakeServer();
    fake.server.listen(0, '127.0.0.1');
    await once(fake.server, 'listening');
    return fake;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  async frames(count: number, connection = 0): Promise<Buffer[]> {
    await until(() => (this.connections[connection]?.frames.length ?? 0) >= count, `${count} frames`);
    return this.connections[connection]!.frames;
  }

  reply(body: Buffer, connection = 0): void {
    this.connections[connection]!.socket.write(encodeFrame(body));
  }

  /** New connections are refused from now on; the open ones stay. */
  stopListening(): void {
    this.server.close();
  }

  close(): Promise<void> {
    for (const { socket } of this.connections) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const idBody = (id: number, text = ''): Buffer => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(id);
  return Buffer.concat([head, Buffer.from(text)]);
};
const codec = { replyId: (body: Buffer) => body.readUInt32BE(0) };

let fake: FakeServer | null = null;
let client: Client | null = null;
afterEach(async () => {
  client?.close();
  await fake?.close();
  fake = client = null;
  await cleanup();
});

/** A raw-codec error reply: [u32 id][u8 status][message]. */
const rawError = (id: number, kind: 'shutting_down', message: string): Buffer =>
  Buffer.concat([idBody(id), Buffer.from([RAW_STATUS[kind]]), Buffer.from(message)]);

describe('Client', () => {
  it("sends a draining server's refusal of a request it did not run again on a new connection, and ends the old one", async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec: rawClientCodec });
    const request = client.request(7, idBody(7, 'q'));
    await fake.frames(1);
    const oldEnded = once(fake.connections[0]!.socket, 'end');
    fake.reply(rawError(7, 'shutting_down', NOT_RUN_SHUTTING_DOWN));
    const [resent] = await fake.frames(1, 1);
    expect(resent).toEqual(idBody(7, 'q'));
    await oldEnded; // nothing left on it: the client closed its side
    fake.reply(Buffer.concat([idBody(7), Buffer.from([RAW_STATUS.ok]), Buffer.from('a')]), 1);
    expect(decodeRawReply(await request).toString()).toBe('a');
  });

  it('passes on a shutting_down reply for a request that ran (cut off at the drain deadline), and a refusal when no new connection can be made', async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec: rawClientCodec, connectAttempts: 1 });
    const ran = client.request(1, idBody(1));
    await fake.frames(1);
    fake.reply(rawError(1, 'shutting_down', 'server shut down before the request finished'));
    const cut = await ran;
    expect(() => decodeRawReply(cut)).toThrow(/shut down before the request finished/);
    expect(fake.connections).toHaveLength(1);

    const refused = client.request(2, idBody(2));
    await fake.frames(2);
    fake.stopListening();
    fake.reply(rawError(2, 'shutting_down', NOT_RUN_SHUTTING_DOWN));
    const refusal = await refused;
    expect(() => decodeRawReply(refusal)).toThrow(NOT_RUN_SHUTTING_DOWN);
  });

  it("stops sending on a connection at the server's FIN: unanswered requests fail connection_closed, new ones go to a new connection", async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec });
    const unanswered = client.request(1, idBody(1));
    await fake.frames(1);
    fake.connections[0]!.socket.end();
    expect((await rejection(unanswered)).kind).toBe('connection_closed');
    const next = client.request(2, idBody(2));
    await fake.frames(1, 1);
    fake.reply(idBody(2, 'second'), 1);
    expect((await next).toString('latin1', 4)).toBe('second');
    expect(fake.connections[0]!.frames).toHaveLength(1);
  });

  it('matches pipelined replies to their requests by id, whatever their order', async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec });
    const pending = [1, 2, 3].map((id) => client!.request(id, idBody(id, `q${id}`)));
    const frames = await fake.frames(3);
    expect(frames.map((f) => f.toString('latin1', 4))).toEqual(['q1', 'q2', 'q3']);
    fake.reply(idBody(3, 'a3'));
    fake.reply(idBody(99, 'nobody asked'));
    fake.reply(Buffer.concat([idBody(1, 'a1')]));
    fake.reply(idBody(2, 'a2'));
    const replies = await Promise.all(pending);
    expect(replies.map((r) => r.toString('latin1', 4))).toEqual(['a1', 'a2', 'a3']);
    expect(client.inFlight).toBe(0);
  });

  it('refuses an id already in flight, also while the connection is being made', async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec, timeoutMs: 2000 });
    const first = client.request(5, idBody(5, 'one')).then(
      (reply) => reply.toString('latin1', 4),
      (error: Error) => error,
    );
    const second = await client.request(5, idBody(5, 'two')).then(
      () => 'resolved',
      (error: Error) => error,
    );
    expect(second).toBeInstanceOf(RangeError);
    await fake.frames(1);
    fake.reply(idBody(5, 'one'));
    expect(await first).toBe('one');
    expect(fake.connections[0]!.frames.map((f) => f.toString('latin1', 4))).toEqual(['one']);
  });

  it('times out a request with deadline_exceeded and ignores its late reply', async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec, timeoutMs: 30_000 });
    const error = await rejection(client.request(1, idBody(1), { timeoutMs: 50 }));
    expect(error.kind).toBe('deadline_exceeded');
    expect(client.inFlight).toBe(0);
    fake.reply(idBody(1, 'late'));
    const next = client.request(2, idBody(2));
    await fake.frames(2);
    fake.reply(idBody(2, 'fresh'));
    expect((await next).toString('latin1', 4)).toBe('fresh');
    expect(client.inFlight).toBe(0);
  });

  it('fails requests in flight with connection_closed when the connection drops, then reconnects', async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec });
    const pending = [client.request(1, idBody(1)), client.request(2, idBody(2))];
    await fake.frames(2);
    fake.connections[0]!.socket.destroy();
    for (const request of pending) expect((await rejection(request)).kind).toBe('connection_closed');

    const next = client.request(3, idBody(3));
    await fake.frames(1, 1);
    fake.reply(idBody(3, 'second connection'), 1);
    expect((await next).toString('latin1', 4)).toBe('second connection');
    expect(fake.connections).toHaveLength(2);
  });

  it('drops the connection on a reply larger than maxFrameBytes', async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec, maxFrameBytes: 16 });
    const pending = client.request(1, idBody(1));
    await fake.frames(1);
    fake.reply(idBody(1, 'x'.repeat(64)));
    expect((await rejection(pending)).kind).toBe('connection_closed');
  });

  it('gives up connecting after connectAttempts, with connection_closed', async () => {
    fake = await FakeServer.start();
    const port = fake.port;
    await fake.close();
    fake = null;
    client = new Client({ port, codec, connectAttempts: 2 });
    const error = await rejection(client.request(1, idBody(1)));
    expect(error.kind).toBe('connection_closed');
    expect(error.message).toContain(`cannot connect to 127.0.0.1:${port}`);
    expect((error.cause as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it('fails what is in flight on close(), and every later request', async () => {
    fake = await FakeServer.start();
    client = new Client({ port: fake.port, codec });
    const pending = client.request(1, idBody(1));
    await fake.frames(1);
    client.close();
    expect((await rejection(pending)).kind).toBe('connection_closed');
    expect((await rejection(client.request(2, idBody(2)))).kind).toBe('connection_closed');
  });
});

describe('RawClient against a kmux server', () => {
  it('reconnects after the server drops an idle connection', async () => {
    const { server, client: raw } = await startServer({ idleTimeoutMs: 100 });
    expect((await raw.call('echo', 'first')).toString()).toBe('first');
    await until(() => server.stats().connectionErrors.idle_timeout === 1, 'idle timeout');
    await until(() => server.stats().connections.open === 0, 'connection closed');
    expect((await raw.call('echo', 'second')).toString()).toBe('second');
    expect(server.stats().connections.accepted).toBe(2);
  });
});
