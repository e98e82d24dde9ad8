import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, ProtocolError, Server, rawCodec, type RequestHead, type ServerCodec } from '@kmux/core';
import { capturingLogger, cleanup, rejection, track, until, type CapturingLogger } from '../helpers.js';

const OPS = ['echo', 'oneway', 'throws', 'rejects', 'declared', 'hang', 'deadline'];

/** Main-thread half of fixtures/test-codec.mjs. */
const testCodec: ServerCodec = {
  name: 'test',
  peek(body: Buffer): RequestHead {
    if (body.length < 5) throw new ProtocolError(`test frame too short (${body.length} bytes)`);
    // An optional f64 after the op: the timeout the client asks for, in ms.
    const timeoutMs = body.length >= 13 ? body.readDoubleBE(5) : undefined;
    return { id: body.readUInt32BE(0), method: OPS[body[4]!] ?? 'other', oneway: body[4] === 1, timeoutMs };
  },
  errorReply(head, error) {
    const reply = Buffer.alloc(5);
    reply.writeUInt32BE(head.id);
    reply[4] = 0xff;
    return Buffer.concat([reply, Buffer.from(`${error.kind}:${error.message}`)]);
  },
  worker: { module: fileURLToPath(new URL('../fixtures/test-codec.mjs', import.meta.url)), options: { suffix: '!' } },
};

const request = (id: number, op: number, data = ''): Buffer => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(id);
  head[4] = op;
  return Buffer.concat([head, Buffer.from(data)]);
};

/** A request carrying a client timeout (f64 ms) in its head. */
const timed = (id: number, op: number, timeoutMs: number): Buffer => {
  const timeout = Buffer.alloc(8);
  timeout.writeDoubleBE(timeoutMs);
  return Buffer.concat([request(id, op), timeout]);
};

const errorOf = (reply: Buffer): string => (reply[4] === 0xff ? reply.toString('latin1', 5) : 'ok');

describe('a custom codec plugged into the server', () => {
  let server: Server;
  let client: Client;
  let logger: CapturingLogger;
  beforeAll(async () => {
    logger = capturingLogger();
    server = track(new Server({ codec: testCodec, workers: 2, transport: 'userspace', logger }));
    const { port } = await server.listen();
    client = new Client({ port, codec: { replyId: (body) => body.readUInt32BE(0) } });
  });
  afterAll(async () => {
    client.close();
    await cleanup();
  });

  it('loads the worker half by module path with its options', async () => {
    const reply = await client.request(7, request(7, 0, 'hello'));
    expect(reply.equals(Buffer.concat([request(7, 0, 'hello'), Buffer.from('!')]))).toBe(true);
  });

  it('answers a codec that throws or rejects with a "handler" error and logs it', async () => {
    for (const [id, op] of [
      [10, 2],
      [11, 3],
    ] as const) {
      const reply = await client.request(id, request(id, op));
      expect(reply[4]).toBe(0xff);
      expect(errorOf(reply)).toBe('handler:internal error in the codec');
    }
    expect(logger.text('error')).toMatch(/codec test threw in worker \d: Error: codec bug/);
    expect(logger.text('error')).toContain('async codec bug');
    expect(server.stats().requests.outcomes.handler).toBe(2);
    // The worker survived its codec's throw.
    expect(server.stats().workers.every((w) => w.restarts === 0 && w.live)).toBe(true);
  });

  it('passes a declared failure through as a reply, counted as failed', async () => {
    const reply = await client.request(20, request(20, 4, 'x'));
    expect(reply.subarray(5).toString()).toBe('x!');
    expect(server.stats().methods.declared).toMatchObject({ calls: 1, failures: 1 });
  });

  it('sends no reply to a oneway request but counts it', async () => {
    await client.send(request(30, 1));
    await until(() => server.stats().methods.oneway?.calls === 1, 'oneway counted');
    expect(server.stats().requests.inFlight).toBe(0);
    // Nothing stray arrived for id 30: the next request on the connection gets its own reply.
    expect((await client.request(31, request(31, 0))).readUInt32BE(0)).toBe(31);
  });

  it('closes the connection on a frame the codec cannot peek', async () => {
    const pending = client.request(40, Buffer.from([1, 2]));
    expect((await rejection(pending)).kind).toBe('connection_closed');
    expect(server.stats().connectionErrors.protocol).toBe(1);
    expect(logger.text('warn')).toContain('test frame too short (2 bytes)');
    // The client reconnects for the next request.
    expect((await client.request(41, request(41, 0))).readUInt32BE(0)).toBe(41);
  });
});

describe('deadlines a client sends in the request head', () => {
  let server: Server;
  let client: Client;
  beforeAll(async () => {
    server = track(
      new Server({ codec: testCodec, workers: 1, transport: 'userspace', logger: capturingLogger(), deadlineMs: 60_000, methodDeadlines: { hang: 300 } }),
    );
    const { port } = await server.listen();
    client = new Client({ port, codec: { replyId: (body) => body.readUInt32BE(0) }, timeoutMs: 5000 });
  });
  afterAll(async () => {
    client.close();
    await cleanup();
  });

  it('applies the shorter of the client timeout (to 1/16) and the server deadline', async () => {
    const cases: [number, number][] = [
      [150, 144], // client's, rounded down to a multiple of 8
      [10, 10], // exact below 16
      [60_000, 300], // the method's own deadline is shorter
      [0, 300], // no client timeout
      [-5, 300],
    ];
    const replies = await Promise.all(cases.map(([timeout], i) => client.request(i, timed(i, 5, timeout))));
    replies.forEach((reply, i) => {
      const [timeout, applied] = cases[i]!;
      expect(errorOf(reply), `client timeout ${timeout}`).toBe(`deadline_exceeded:hang exceeded its ${applied} ms deadline`);
    });
    expect(server.stats().methods.hang).toMatchObject({ calls: cases.length, failures: cases.length });
  });

  it('falls back to the server deadline for a timeout that is not a finite number', async () => {
    const timeouts = [Infinity, NaN];
    const replies = await Promise.all(
      timeouts.map((timeout, i) => client.request(100 + i, timed(100 + i, 5, timeout), { timeoutMs: 1500 }).catch((error: Error) => error)),
    );
    replies.forEach((reply, i) => {
      expect(reply, `client timeout ${timeouts[i]}`).toBeInstanceOf(Buffer);
      expect(errorOf(reply as Buffer)).toBe('deadline_exceeded:hang exceeded its 300 ms deadline');
    });
  });

  it('hands the applied deadline to the worker', async () => {
    const left = async (id: number, body: Buffer): Promise<number> => Number((await client.request(id, body)).toString('latin1', 5));
    const withClientTimeout = await left(200, timed(200, 6, 5000));
    expect(withClientTimeout).toBeGreaterThan(0);
    expect(withClientTimeout).toBeLessThanOrEqual(4864); // 5000 rounded down to a multiple of 256
    expect(await left(201, request(201, 6))).toBeGreaterThan(4864); // the server's 60 s
  });
});

describe('worker codec load failures', () => {
  afterAll(cleanup);

  const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

  it('rejects listen() when the codec module lacks createWorkerCodec, and close() still works', async () => {
    const server = track(
      new Server({
        codec: { ...testCodec, worker: { module: fixture('no-codec.mjs'), options: {} } },
        workers: 2,
        transport: 'userspace',
        logger: capturingLogger(),
      }),
    );
    await expect(server.listen()).rejects.toThrow(/does not export createWorkerCodec/);
    await server.close();
  });

  it('rejects listen() when the raw handler module fails to import', async () => {
    const server = track(
      new Server({ codec: rawCodec({ handler: fixture('throws-on-import.mjs') }), workers: 1, transport: 'userspace', logger: capturingLogger() }),
    );
    await expect(server.listen()).rejects.toThrow(/exploded on import/);
  });
});
