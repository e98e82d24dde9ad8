// A client that connects, writes its requests and closes before the server accepts: sockmap
// refuses a socket that is no longer ESTABLISHED (EOPNOTSUPP), so the kernel transport serves
// that connection in user space (its requests are still in the receive queue) and counts it.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server, encodeFrame, encodeRawRequest, rawCodec } from '@kmux/core';
import { HANDLERS, until } from '../../packages/core/test/helpers.js';

const quiet = { info() {}, warn() {}, error() {} };
const CLIENTS = 24;
const REQUESTS = 8;

// Runs in its own thread, so that its sockets connect, send and close while the server's
// thread is blocked and accepts nothing. Raises the gate once every FIN is sent.
const CLIENT_THREAD = `
const { workerData, parentPort } = require('node:worker_threads');
const net = require('node:net');
const { port, payload, clients, gate } = workerData;
const flag = new Int32Array(gate);
const replies = [];
let sent = 0;
for (let i = 0; i < clients; i++) {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  let pending = Buffer.alloc(0);
  let count = 0;
  socket.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
      pending = pending.subarray(4 + pending.readUInt32BE(0));
      count++;
    }
  });
  socket.on('error', () => {});
  socket.on('finish', () => {
    if (++sent === clients) { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); }
  });
  socket.on('close', () => {
    replies.push(count);
    if (replies.length === clients) parentPort.postMessage(replies);
  });
  socket.end(Buffer.from(payload));
}
`;

describe('sockmap transport: a connection closed before the accept', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 2, transport: 'sockmap', logger: quiet });
    ({ port } = await server.listen());
  });
  afterAll(() => server.close({ timeoutMs: 1000 }));

  it(`answers all ${REQUESTS} requests of each of ${CLIENTS} clients that closed before the accept, in user space`, { timeout: 60_000 }, async () => {
    const payload = Buffer.concat(Array.from({ length: REQUESTS }, (_, i) => encodeFrame(encodeRawRequest(i, 'echo', Buffer.from(`early ${i}`)))));
    const gate = new SharedArrayBuffer(4);
    const thread = new Worker(CLIENT_THREAD, { eval: true, workerData: { port, payload, clients: CLIENTS, gate } });
    const replies = new Promise<number[]>((resolve, reject) => {
      thread.once('message', resolve);
      thread.once('error', reject);
    });
    // Block this thread (the server's accept loop) until every client has sent its FIN.
    expect(Atomics.wait(new Int32Array(gate), 0, 0, 30_000)).toBe('ok');
    const got = await replies;
    await thread.terminate();
    const fallbacks = server.stats().kernel?.userspaceFallbacks ?? 0;
    console.log(`### sockmap closed before accept: replies ${JSON.stringify(got)}, user-space fallbacks ${fallbacks}`);
    expect(got).toEqual(Array.from({ length: CLIENTS }, () => REQUESTS));
    // The FINs were sent before the server thread accepted any of them.
    expect(fallbacks).toBeGreaterThan(0);
    await until(() => server.stats().connections.open === 0, 'fallback connections closed');
  });
});
