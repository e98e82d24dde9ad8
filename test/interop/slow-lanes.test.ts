// slowMethods lanes with each codec's own wire format, on user space and on native, whose I/O
// thread reads each request's method name itself (native/slow_methods.h): a slow call runs only
// on the first slowWorkers workers and waits for one of them to be free, so the fast calls
// sent meanwhile keep the other workers. Real clients: the stock thrift library (framed and
// THeader) and kmux's protobuf client.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Server, ServerOptions } from '@kmux/core';
import { createProtobufClient, loadService, protobufCodec } from '@kmux/protobuf';
import { thriftCodec, type ThriftProtocolName } from '@kmux/thrift';
import { EXAMPLE_DIR, startServer, stockClient } from './catalog.js';
import { PRICING_PROTO, PRICING_SERVICE, type PricingMethods } from './protobuf-pricing.js';
import { headerClient } from './theader-client.js';
import { cleanup, gateTag, release, started, track, until } from '../../packages/core/test/helpers.js';

const CATALOG_HANDLER = fileURLToPath(new URL('./fixtures/lanes-catalog-handler.mjs', import.meta.url));
const PRICING_HANDLER = fileURLToPath(new URL('./fixtures/lanes-pricing-handler.mjs', import.meta.url));
const LANES: Pick<ServerOptions, 'workers' | 'slowWorkers'> = { workers: 2, slowWorkers: 1 };

/** A running service: a slow call held at the gate `tag` until released, and a fast call answering `data`. */
interface Service {
  readonly server: Server;
  slow(tag: string): Promise<unknown>;
  fast(data: Buffer): Promise<Buffer>;
  close(): void;
}

async function catalog(protocol: ThriftProtocolName, framing: 'framed' | 'THeader', transport: ServerOptions['transport']): Promise<Service> {
  const codec = thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: CATALOG_HANDLER, protocol });
  const { server, port } = await startServer(codec, { ...LANES, transport, slowMethods: ['lookup'] });
  const { call, close } = framing === 'framed' ? stockClient(port, protocol) : headerClient(port, protocol, {});
  return { server: track(server), slow: (sku) => call('lookup', { sku }), fast: async (data) => (await call('echo', data)) as Buffer, close };
}

async function pricing(transport: ServerOptions['transport']): Promise<Service> {
  const codec = protobufCodec({ schema: PRICING_PROTO, service: PRICING_SERVICE, handler: PRICING_HANDLER });
  const { server, port } = await startServer(codec, { ...LANES, transport, slowMethods: ['GetPrice'] });
  const client = createProtobufClient<PricingMethods>(await loadService(PRICING_PROTO, PRICING_SERVICE), { port });
  return {
    server: track(server),
    slow: (sku) => client.getPrice({ sku }),
    fast: async (data) => Buffer.from((await client.echo({ data })).data),
    close: () => client.close(),
  };
}

const SERVICES: Readonly<Record<string, (transport: ServerOptions['transport']) => Promise<Service>>> = {
  'thrift binary': (transport) => catalog('binary', 'framed', transport),
  'thrift compact': (transport) => catalog('compact', 'framed', transport),
  'thrift binary in THeader': (transport) => catalog('binary', 'THeader', transport),
  'thrift compact in THeader': (transport) => catalog('compact', 'THeader', transport),
  protobuf: pricing,
};

let running: Service | undefined;
afterEach(async () => {
  running?.close();
  running = undefined;
  await cleanup();
});

for (const transport of ['userspace', 'native'] as const) {
  describe.each(Object.keys(SERVICES))(`slowMethods lanes on ${transport}, %s`, (name) => {
    it('runs the slow calls one at a time on the first worker while the fast calls keep the other', async () => {
      const service = (running = await SERVICES[name]!(transport));
      const tags = [gateTag('slow-a'), gateTag('slow-b')];
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
      expect((await Promise.all(slow)).map((item) => (item as { sku: string }).sku)).toEqual(tags);
    });
  });
}
