import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Server } from '@kmux/core';
import { loadService, protobufCodec } from '@kmux/protobuf';
import { thriftCodec } from '@kmux/thrift';
import { runNativeLoad, type NativeLoadSpec } from '../src/load/native-load.js';
import { encodeProtobufCall, encodeThriftCall } from '../src/load/request-template.js';
import { C_ECHO_SERVER } from '../src/peers/spawn-peer.js';
import { catalogService } from '../src/service/catalog.js';
import { CATALOG_HANDLER_MODULE, CATALOG_SERVICE_MODULE } from '../src/service/catalog-modules.js';
import { CATALOG_PROTO, CATALOG_PROTO_SERVICE } from '../src/service/catalog-proto.js';

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const close of cleanup.splice(0).reverse()) await close();
});

const quiet = { info: () => undefined, warn: () => undefined, error: console.error };

async function kmuxThrift(): Promise<number> {
  const server = new Server({
    codec: thriftCodec({ service: CATALOG_SERVICE_MODULE, handler: CATALOG_HANDLER_MODULE, protocol: 'binary' }),
    workers: 2,
    transport: 'userspace',
    logger: quiet,
  });
  cleanup.push(() => server.close());
  return (await server.listen({ host: '127.0.0.1', port: 0 })).port;
}

/** The C epoll echo server, a process of its own: it can be stopped with SIGSTOP. */
async function cEchoServer(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(C_ECHO_SERVER, ['1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.push(() => {
    child.kill('SIGCONT');
    child.kill('SIGTERM');
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { port: Number(/^port (\d+)$/.exec(line)![1]), child };
}

/** A server that sends every frame straight back after `transform`; Thrift CALLs echoed count as replies. */
async function frameServer(transform: (frame: Buffer) => Buffer | null): Promise<number> {
  const server: NetServer = createServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const out: Buffer[] = [];
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
        const end = 4 + pending.readUInt32BE(0);
        const reply = transform(Buffer.from(pending.subarray(0, end)));
        if (reply) out.push(reply);
        pending = pending.subarray(end);
      }
      // Replies of one chunk go back in reverse order, as a multi-threaded server's may.
      if (out.length > 0) socket.write(Buffer.concat(out.reverse()));
    });
    socket.on('error', () => undefined);
  });
  cleanup.push(() => new Promise((resolve) => server.close(resolve)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const echo = (bytes = 64) => encodeThriftCall(catalogService.Client, { method: 'echo', args: [Buffer.alloc(bytes, 7)], weight: 3 });
const sleepCall = () => encodeThriftCall(catalogService.Client, { method: 'sleep', args: [1] });

function spec(port: number, overrides: Partial<NativeLoadSpec>): NativeLoadSpec {
  return {
    host: '127.0.0.1',
    port,
    protocol: 'thrift',
    connections: 3,
    shape: { kind: 'closed', depth: 5 },
    warmupSeconds: 0.2,
    durationSeconds: 0.5,
    drainTimeoutMs: 2000,
    templates: [echo(), sleepCall()],
    ...overrides,
  };
}

describe('native load generator, closed loop', () => {
  it('matches every reply of a real kmux server to its request, per call class, nothing lost', async () => {
    const result = await runNativeLoad(spec(await kmuxThrift(), {}));
    expect(result.fatal).toBeNull();
    expect(result.lost).toBe(0);
    expect(result.errors).toBe(0);
    const [echoes, sleeps] = result.perTemplate;
    expect(echoes!.requests + sleeps!.requests).toBe(result.requests);
    expect(result.requests).toBeGreaterThan(0);
    // Weights 3:1, give or take the requests in flight when the window closed.
    expect(echoes!.requests / sleeps!.requests).toBeGreaterThan(2);
    expect(echoes!.requests / sleeps!.requests).toBeLessThan(4);
    // sleep(1) waits a millisecond on the server: its latency class shows it.
    expect(sleeps!.latency.p50).toBeGreaterThanOrEqual(1000);
  });

  it('speaks the kmux protobuf envelope, ids patched as 5-byte varints, failures by status', async () => {
    const service = await loadService(CATALOG_PROTO, CATALOG_PROTO_SERVICE);
    // Worker threads load the handler by path, as plain JavaScript: the built one.
    const handler = fileURLToPath(new URL('../dist/service/catalog-proto-handler.js', import.meta.url));
    const server = new Server({
      codec: protobufCodec({ schema: CATALOG_PROTO, service: CATALOG_PROTO_SERVICE, handler }),
      workers: 2,
      transport: 'userspace',
      logger: quiet,
    });
    cleanup.push(() => server.close());
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    const templates = [
      encodeProtobufCall(service, { method: 'echo', args: [Buffer.alloc(64, 1)] }),
      // rounds 0 is refused with INVALID_ARGUMENT: an error reply, not a lost one.
      encodeProtobufCall(service, { method: 'hashRounds', args: [Buffer.alloc(8), 0], label: 'refused' }),
    ];
    const result = await runNativeLoad(spec(port, { protocol: 'protobuf', templates }));
    expect(result.fatal).toBeNull();
    expect(result.lost).toBe(0);
    expect(result.perTemplate[0]!.errors).toBe(0);
    expect(result.perTemplate[1]!.errors).toBe(result.perTemplate[1]!.requests);
    expect(result.errors).toBeGreaterThan(0);
  });

  it('aborts on a reply whose id no request in flight has', async () => {
    const { idAt } = echo();
    const port = await frameServer((frame) => {
      frame.writeUInt32BE((frame.readUInt32BE(idAt) + 1) >>> 0, idAt);
      return frame;
    });
    const result = await runNativeLoad(spec(port, { templates: [echo()] }));
    expect(result.fatal).toMatch(/matches no request in flight/);
  });

  it('counts requests never answered as lost', async () => {
    const sleepFrame = sleepCall().frame;
    // Answers echo, swallows sleep: every slot ends up stuck on a sleep.
    const port = await frameServer((frame) => (frame.length === sleepFrame.length ? null : frame));
    const result = await runNativeLoad(spec(port, { drainTimeoutMs: 200 }));
    expect(result.fatal).toBeNull();
    expect(result.lost).toBeGreaterThan(0);
    expect(result.lost).toBeLessThanOrEqual(3 * 5);
  });
});

describe('native load generator, open loop', () => {
  it('sends on schedule and charges a stalled server for every request it kept waiting', async () => {
    const { port, child } = await cEchoServer();
    const rate = 2000;
    const run = runNativeLoad(
      spec(port, { connections: 2, shape: { kind: 'open', ratePerSecond: rate }, warmupSeconds: 0.2, durationSeconds: 1.5, templates: [echo()] }),
      {
        onMeasureStart: () => {
          // 0.3 s into the window, the server stops for 300 ms.
          void sleep(300).then(async () => {
            child.kill('SIGSTOP');
            await sleep(300);
            child.kill('SIGCONT');
          });
        },
      },
    );
    const result = await run;
    expect(result.fatal).toBeNull();
    expect(result.lost).toBe(0);
    // Exactly the requests intended in the window, answered or not.
    expect(Math.abs(result.requests - rate * 1.5)).toBeLessThanOrEqual(1);
    // About 600 requests were due during the stall, 200 of them more than 200 ms before it
    // ended: over 1 % of the window. A closed loop would have charged it to 2 requests.
    expect(result.latency.p99).toBeGreaterThanOrEqual(200_000);
    expect(result.latency.max).toBeGreaterThanOrEqual(290_000);
  });
});

describe('native load generator, idle connections', () => {
  it('holds the connections, then gets one reply on each', async () => {
    const result = await runNativeLoad(spec(await kmuxThrift(), { connections: 300, shape: { kind: 'idle' }, templates: [echo()] }));
    expect(result.fatal).toBeNull();
    expect(result.connections).toBe(300);
    expect(result.requests).toBe(300);
    expect(result.lost).toBe(0);
  });
});

describe('pinning', () => {
  it('pins every thread of the server process to the CPUs it is given', async () => {
    const { port } = await cEchoServer();
    const target = spawn('sleep', ['10']);
    cleanup.push(() => void target.kill());
    const result = await runNativeLoad(
      spec(port, { templates: [echo()], durationSeconds: 0.2, pin: { generatorCpus: '0', serverPid: target.pid!, serverCpus: '0' } }),
    );
    expect(result.fatal).toBeNull();
    expect(/^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/${target.pid}/status`, 'utf8'))![1]).toBe('0');
  });
});
