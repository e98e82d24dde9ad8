// The KCM transport on a real kernel (Debian 6.1 and 6.12, run.sh): the example Thrift
// service on a kmux Server with transport 'kcm' and 2 workers, called by the stock
// `thrift` npm client. Each connection gets a KCM mux with one KCM socket per worker;
// the workers read whole requests from their sockets and answer on them.
import { readFileSync, readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, Server, rawCodec } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { RawConnection, gateTag, parseReply, release, started } from '../../packages/core/test/helpers.js';
import { Catalog, EXAMPLE_DIR, catalogTypes, expectedHashRounds, thrift, unframedEcho } from '../interop/catalog.js';

const series = process.env.KMUX_KERNEL_SERIES;
const MAX_FRAME = 1 << 20;
const quiet = { info() {}, warn() {}, error() {} };
const openFds = (): number => readdirSync('/proc/self/fd').length;

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const giveUp = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The stock Apache Thrift client over one framed connection, its callback methods as promises. */
function stockClient(port: number) {
  const connection = thrift.createConnection('127.0.0.1', port, { transport: thrift.TFramedTransport, protocol: thrift.TBinaryProtocol });
  connection.on('error', () => {});
  const client = thrift.createClient(Catalog, connection);
  const call = (method: string, ...args: unknown[]): Promise<any> =>
    new Promise((resolve, reject) => client[method](...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
  return { call, close: () => connection.end() };
}

/** A binary-protocol echo(data) CALL in its frame, written by hand for raw sockets. */
function echoFrame(seqid: number, data: Buffer): Buffer {
  const body = Buffer.alloc(4 + 4 + 4 + 4 + 3 + 4 + data.length + 1);
  let at = body.writeUInt32BE(0x80010001, 0);
  at = body.writeInt32BE(4, at);
  at += body.write('echo', at);
  at = body.writeInt32BE(seqid, at);
  at = body.writeUInt8(11, at); // field 1: binary
  at = body.writeInt16BE(1, at);
  at = body.writeInt32BE(data.length, at);
  at += data.copy(body, at);
  body.writeUInt8(0, at);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

async function rawSocket(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** The KCM sockets and muxes the kernel lists (/proc/net/kcm): one "mux" line per mux, one "kcm-N" per socket. */
function procKcm(): { muxes: number; kcmSockets: number } {
  const lines = readFileSync('/proc/net/kcm', 'utf8').split('\n').map((line) => line.trim());
  return { muxes: lines.filter((l) => l.startsWith('mux ')).length, kcmSockets: lines.filter((l) => /^kcm-\d+ /.test(l)).length };
}

describe(`kernel ${series}: KCM transport, stock Thrift client`, () => {
  let server: Server;
  let port: number;
  const warnings: string[] = [];
  beforeAll(async () => {
    server = new Server({
      codec: thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: `${EXAMPLE_DIR}handler.js`, protocol: 'binary' }),
      workers: 2,
      transport: 'kcm',
      maxFrameBytes: MAX_FRAME,
      logger: { ...quiet, warn: (line: string) => warnings.push(line) },
    });
    ({ port } = await server.listen());
  });
  afterAll(() => server.close({ timeoutMs: 2000 }));

  it('runs on KCM: the kernel lists a mux with a KCM socket per worker while a client is connected', async () => {
    expect(server.transport).toEqual({ name: 'kcm', requested: 'kcm', notTaken: {} });
    const before = procKcm();
    const { call, close } = stockClient(port);
    try {
      expect(await call('echo', Buffer.from('hello'))).toEqual(Buffer.from('hello'));
      const during = procKcm();
      console.log(`### ${series} /proc/net/kcm: ${JSON.stringify(before)} -> ${JSON.stringify(during)} while connected`);
      expect(during.muxes - before.muxes).toBe(1);
      expect(during.kcmSockets - before.kcmSockets).toBe(2);
    } finally {
      close();
    }
    await until(() => server.stats().connections.open === 0, 'the connection released');
    expect(procKcm()).toEqual(before);
  });

  it('answers pipelined calls out of order on one connection: fast ones overtake a slow one', async () => {
    const { call, close } = stockClient(port);
    try {
      await Promise.all(Array.from({ length: 10 }, () => call('echo', Buffer.from('warm-up'))));
      const finished: string[] = [];
      const sentAt = Date.now();
      // Long enough that TCG's slowness (100 echoes took 2.4-4.4 s on a busy host) cannot reorder it.
      const slow = call('sleep', 8000).then((ms: number) => finished.push(`sleep ${ms}`));
      const fast = Array.from({ length: 100 }, (_, i) => {
        const payload = Buffer.from(`payload ${i} `.repeat(1 + (i % 7)));
        return call('echo', payload).then((reply: Buffer) => {
          expect(reply).toEqual(payload);
          finished.push(`echo at ${Date.now() - sentAt} ms`);
        });
      });
      const data = Buffer.from('catalog');
      const hashes = [1, 50, 400].map((rounds) =>
        call('hashRounds', data, rounds).then((digest: Buffer) => expect(digest).toEqual(expectedHashRounds(data, rounds))),
      );
      const item = call('lookup', new catalogTypes.Query({ sku: 'ms-002' }));
      await Promise.all([slow, ...fast, ...hashes]);
      expect(await item).toMatchObject({ sku: 'ms-002', title: 'Wireless mouse', priceCents: 2900 });
      expect(finished).toHaveLength(101);
      expect(finished.at(-1)).toBe('sleep 8000');
      console.log(`### ${series} KCM: 100 echoes overtook an 8000 ms sleep on one connection; last echo ${finished.at(-2)}`);
      await expect(call('lookup', new catalogTypes.Query({ sku: 'nope' }))).rejects.toMatchObject({ sku: 'nope' });
    } finally {
      close();
    }
  });

  it('closes only the connection that sends a length over maxFrameBytes, and counts it', async () => {
    const { call, close } = stockClient(port);
    try {
      expect(await call('echo', Buffer.from('before'))).toEqual(Buffer.from('before'));
      const bad = await rawSocket(port);
      // Not events.once: it rejects on the 'error' (ECONNRESET) that comes with the reset.
      const closed = new Promise((resolve) => bad.once('close', resolve));
      const length = Buffer.alloc(8);
      length.writeUInt32BE(MAX_FRAME + 1);
      bad.write(length);
      await closed;
      expect(await call('echo', Buffer.from('after'))).toEqual(Buffer.from('after'));
      await until(() => server.stats().connectionErrors.frame_too_large === 1, 'frame_too_large counted');
    } finally {
      close();
    }
  });

  it('refuses a client on the unframed (buffered) transport with its reason, counted, logging its address', async () => {
    const bad = await rawSocket(port);
    const local = `127.0.0.1:${bad.localPort}`;
    const closed = new Promise((resolve) => bad.once('close', resolve));
    bad.write(unframedEcho('binary', Buffer.from('no length prefix')));
    await closed;
    await until(() => server.stats().connectionErrors.unframed === 1, 'unframed counted');
    expect(warnings.find((line) => line.includes(local))).toMatch(/closed: unframed Thrift: use TFramedTransport .*\(transport kcm\)/);
  });

  it("reports the kernel's KCM counters in server stats", async () => {
    const { call, close } = stockClient(port);
    try {
      const before = server.stats().kernel?.kcm;
      expect(before, 'stats().kernel.kcm').toBeDefined();
      await Promise.all(Array.from({ length: 50 }, (_, i) => call('echo', Buffer.from(`count ${i}`))));
      // The kernel folds a TCP socket's message counts into the mux block only when a later
      // message reserves a KCM socket (kcm_update_rx_mux_stats in reserve_rx_kcm, skipped while
      // one is still reserved): with no traffic the block stays behind however long one waits.
      // So a few more calls, one at a time, bring the count up.
      const counted = (name: string): number => server.stats().kernel!.kcm!.mux[name]! - before!.mux[name]!;
      let extra = 0;
      while ((counted('RX-Msgs') < 50 || counted('TX-Msgs') < 50) && extra < 20) await call('echo', Buffer.from(`extra ${extra++}`));
      const after = server.stats().kernel!.kcm!;
      expect(after.mux['RX-Msgs']! - before!.mux['RX-Msgs']!).toBeGreaterThanOrEqual(50);
      expect(after.mux['TX-Msgs']! - before!.mux['TX-Msgs']!).toBeGreaterThanOrEqual(50);
      expect(Object.keys(after.psock)).toContain('RX-TooBig');
      expect(server.metrics()).toMatch(/^kmux_kernel_kcm_total\{block="mux",counter="RX-Msgs"\} \d+$/m);
      await until(() => (server.stats().requests.outcomes.ok ?? 0) > 0, 'worker stats merged');
    } finally {
      close();
    }
  });

  it('leaks no fd over connect / request / close cycles', async () => {
    const cycle = async (i: number) => {
      const socket = await rawSocket(port);
      const reply = once(socket, 'data');
      socket.write(echoFrame(i, Buffer.from(`cycle ${i}`)));
      await reply;
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.end();
      await closed;
    };
    for (let i = 0; i < 10; i++) await cycle(i);
    await until(() => server.stats().connections.open === 0, 'warm-up connections released');
    const before = openFds();
    const t0 = Date.now();
    let cycles = 0;
    while (Date.now() - t0 < 15_000) await cycle(cycles++);
    await until(() => server.stats().connections.open === 0, 'all connections released');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = openFds();
    console.log(`### ${series} KCM transport fd check: ${cycles} cycles in ${Date.now() - t0} ms, fds ${before} -> ${after}`);
    expect(cycles).toBeGreaterThanOrEqual(50);
    expect(after).toBeLessThanOrEqual(before);
  });
});

describe(`kernel ${series}: KCM transport, worker death and shutdown (raw codec)`, () => {
  const handlers = new URL('../../packages/core/test/fixtures/handlers.mjs', import.meta.url).pathname;

  it('closes the connection whose request died with its worker; an idle one is served by the replacement', async () => {
    const server = new Server({ codec: rawCodec({ handler: handlers }), workers: 2, transport: 'kcm', logger: quiet });
    const { port } = await server.listen();
    const idle = new RawClient({ port, timeoutMs: 20_000 });
    const doomed = new RawClient({ port, timeoutMs: 20_000 });
    try {
      await Promise.all([idle.call('echo', 'idle'), doomed.call('echo', 'doomed')]);
      await expect(doomed.call('exit', 'bye')).rejects.toMatchObject({ kind: 'connection_closed' });
      await until(() => server.stats().workers.every((w) => w.live) && server.stats().connections.open === 1, 'replacement');
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => idle.call('echo', `still here ${i}`)));
      expect(replies.map(String)).toEqual(Array.from({ length: 20 }, (_, i) => `still here ${i}`));
      expect(server.stats().requests.outcomes.worker_died).toBe(1);
    } finally {
      idle.close();
      doomed.close();
      await server.close({ timeoutMs: 1000 });
    }
  });

  it('still answers what a client sent before half-closing', async () => {
    const server = new Server({ codec: rawCodec({ handler: handlers }), workers: 2, transport: 'kcm', logger: quiet });
    const { port } = await server.listen();
    const conn = await RawConnection.open(port, { allowHalfOpen: true });
    try {
      const tag = gateTag('half-close');
      conn.request(1, 'wait', tag);
      await started(tag);
      conn.socket.end();
      await new Promise((resolve) => setTimeout(resolve, 200));
      release(tag);
      await conn.waitReplies(1);
      expect(parseReply(conn.replies[0]!)).toEqual({ id: 1, payload: `released ${tag}` });
      await conn.closed;
    } finally {
      conn.socket.destroy();
      await server.close({ timeoutMs: 1000 });
    }
  });

  it('closes gracefully: an in-flight request finishes, then the connection closes', async () => {
    const server = new Server({ codec: rawCodec({ handler: handlers }), workers: 2, transport: 'kcm', logger: quiet });
    const { port } = await server.listen();
    const client = new RawClient({ port, timeoutMs: 20_000 });
    try {
      const tag = gateTag('drain');
      const slow = client.call('wait', tag);
      await started(tag);
      const closed = server.close({ timeoutMs: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      release(tag);
      expect(String(await slow)).toBe(`released ${tag}`);
      await closed;
      expect(server.stats().connections.open).toBe(0);
    } finally {
      client.close();
    }
  });
});
