// slowMethods lanes with each codec's own wire format, on user space and on native, whose I/O
// thread reads each request's method name itself (native/slow_methods.h): a slow call runs only
// on the first slowWorkers workers and waits for one of them to be free, so the fast calls
// sent meanwhile keep the other workers. Real clients: the stock thrift library (framed and
// THeader) and kmux's protobuf client.
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Server, ServerOptions } from '@kmux/core';
import { createProtobufClient, loadService, protobufCodec } from '@kmux/protobuf';
import { thriftCodec, type ThriftProtocolName } from '@kmux/thrift';
import { EXAMPLE_DIR, startServer, stockClient } from './catalog.js';
import { PRICING_PROTO, PRICING_SERVICE, type PricingMethods } from './protobuf-pricing.js';
import { headerClient } from './theader-client.js';

const CATALOG_HANDLER = fileURLToPath(new URL('./fixtures/lanes-catalog-handler.mjs', import.meta.url));
const PRICING_HANDLER = fileURLToPath(new URL('./fixtures/lanes-pricing-handler.mjs', import.meta.url));
const LANES_GATE = 'kmux-lanes-gate';
const LANES: Pick<ServerOptions, 'workers' | 'slowWorkers'> = { workers: 2, slowWorkers: 1 };

/** A running service: a slow call held at the gate `tag` until released, and a fast call answering `data`. */
interface Service {
  readonly server: Server;
  slow(tag: number): Promise<unknown>;
  fast(data: Buffer): Promise<Buffer>;
  close(): void;
}

async function catalog(protocol: ThriftProtocolName, framing: 'framed' | 'THeader', transport: ServerOptions['transport']): Promise<Service> {
  const codec = thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: CATALOG_HANDLER, protocol });
  const { server, port } = await startServer(codec, { ...LANES, transport, slowMethods: ['blockFor'] });
  const { call, close } = framing === 'framed' ? stockClient(port, protocol) : headerClient(port, protocol, {});
  return { server, slow: (tag) => call('blockFor', tag), fast: async (data) => (await call('echo', data)) as Buffer, close };
}

async function pricing(transport: ServerOptions['transport']): Promise<Service> {
  const codec = protobufCodec({ schema: PRICING_PROTO, service: PRICING_SERVICE, handler: PRICING_HANDLER });
  const { server, port } = await startServer(codec, { ...LANES, transport, slowMethods: ['Sleep'] });
  const client = createProtobufClient<PricingMethods>(await loadService(PRICING_PROTO, PRICING_SERVICE), { port });
  return {
    server,
    slow: (tag) => client.sleep({ ms: tag }),
    fast: async (data) => Buffer.from((await client.echo({ data })).data),
    close: () => client.close(),
  };
}

const SERVICES: Readonly<Record<string, (transport: ServerOptions['transport']) => Promise<Service>>> = {
  'thrift binary': (transport) => catalog('binary', 'framed', transport),
  'thrift compact': (transport) => catalog('compact', 'framed', transport),
  'thrift compact in THeader': (transport) => catalog('compact', 'THeader', transport),
  protobuf: pricing,
};

// ---- the gate (fixtures/lanes-gate.mjs) ----------------------------------------------------

const gate = new BroadcastChannel(LANES_GATE);
gate.unref();
const startedOn = new Map<number, number>();
const waiters = new Map<number, (threadId: number) => void>();
gate.onmessage = (event: unknown) => {
  const { started, threadId } = (event as { data: { started?: number; threadId: number } }).data;
  if (started === undefined) return;
  startedOn.set(started, threadId);
  waiters.get(started)?.(threadId);
};
const open = new Set<number>();
let nextTag = 1;

function newTag(): number {
  const tag = nextTag++;
  open.add(tag);
  return tag;
}

/** The thread id of the worker that started the call held at `tag`. */
function started(tag: number): Promise<number> {
  const threadId = startedOn.get(tag);
  return threadId !== undefined ? Promise.resolve(threadId) : new Promise((resolve) => waiters.set(tag, resolve));
}

function release(tag: number): void {
  open.delete(tag);
  gate.postMessage({ release: tag });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (const giveUp = Date.now() + 10_000; !condition(); await new Promise((resolve) => setTimeout(resolve, 5))) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
  }
}

let running: Service | undefined;
afterEach(async () => {
  for (const tag of open) release(tag);
  running?.close();
  await running?.server.close({ timeoutMs: 0 });
  running = undefined;
});
afterAll(() => gate.close());

for (const transport of ['userspace', 'native'] as const) {
  describe.each(Object.keys(SERVICES))(`slowMethods lanes on ${transport}, %s`, (name) => {
    it('runs the slow calls one at a time on the first worker while the fast calls keep the other', async () => {
      const service = (running = await SERVICES[name]!(transport));
      const tags = [newTag(), newTag()];
      const slow = tags.map((tag) => service.slow(tag));
      const first = await started(tags[0]!);
      expect(first).toBe(service.server.stats().workers[0]!.threadId);
      // The other worker is free, but not in the slow lane: the second slow call waits.
      await until(() => service.server.stats().requests.queued === 1, 'the second slow call waiting for the slow lane');
      const payloads = Array.from({ length: 20 }, (_, i) => Buffer.from(`fast ${i}`));
      expect(await Promise.all(payloads.map((payload) => service.fast(payload)))).toEqual(payloads);
      release(tags[0]!);
      expect(await started(tags[1]!)).toBe(first);
      release(tags[1]!);
      expect(await Promise.all(slow)).toEqual(name === 'protobuf' ? tags.map((ms) => ({ ms })) : tags);
    });
  });
}
