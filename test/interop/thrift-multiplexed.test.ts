// Several services on one port (Thrift's TMultiplexedProcessor): the stock Node client through
// thrift.Multiplexer, and Debian's python3-thrift through TMultiplexedProtocol, both on one
// connection to Catalog and Inventory, whose `sleep` methods share a name but not an answer.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { catalogTypes, stockClient, thrift } from './catalog.js';
import { Catalog, Inventory, startMultiplexedServer, stockMultiplexedClients } from './multiplexed.js';

const { TApplicationException, TApplicationExceptionType } = thrift.Thrift;
const CLIENT_SCRIPT = fileURLToPath(new URL('./multiplexed_client.py', import.meta.url));

for (const protocol of ['binary', 'compact'] as const) {
  describe(`thrift ${protocol}: Catalog and Inventory on one port`, () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      ({ server, port } = await startMultiplexedServer(protocol, { methodDeadlines: { 'Inventory:sleep': 400 } }));
    });
    afterAll(() => server.close());

    it('stock Node multiplexed clients: each call reaches its own service, pipelined on one connection', async () => {
      const { calls, close } = stockMultiplexedClients(port, protocol, { Catalog, Inventory });
      try {
        const replies = await Promise.all([
          calls.Catalog!('sleep', 30),
          calls.Inventory!('sleep', 30),
          calls.Inventory!('stock', 'kb-001'),
          calls.Catalog!('echo', Buffer.from('multiplexed')),
          calls.Catalog!('lookup', new catalogTypes.Query({ sku: 'ms-002' })),
        ]);
        expect(replies.slice(0, 4)).toEqual([30, -30, 12, Buffer.from('multiplexed')]);
        expect(replies[4]).toMatchObject({ title: 'Wireless mouse' });
        await expect(calls.Catalog!('lookup', new catalogTypes.Query({ sku: 'nope' }))).rejects.toBeInstanceOf(catalogTypes.ItemNotFound);
      } finally {
        close();
      }
    });

    it('applies deadlines per service and method: Inventory:sleep has 400 ms, Catalog:sleep the default', async () => {
      const { calls, close } = stockMultiplexedClients(port, protocol, { Catalog, Inventory });
      try {
        const late = await calls.Inventory!('sleep', 1500).catch((e: unknown) => e);
        expect(late).toBeInstanceOf(TApplicationException);
        expect(late).toMatchObject({ type: TApplicationExceptionType.INTERNAL_ERROR, message: expect.stringMatching(/^deadline exceeded: Inventory:sleep/) });
        expect(await calls.Catalog!('sleep', 600)).toBe(600);
      } finally {
        close();
      }
    });

    it('serves bare names from a plain client to the default service, counted as Catalog:<method>', async () => {
      const { call, close } = stockClient(port, protocol);
      try {
        expect(await call('echo', Buffer.from('bare'))).toEqual(Buffer.from('bare'));
      } finally {
        close();
      }
      await expect.poll(() => Object.keys(server.stats().methods)).toEqual(expect.arrayContaining(['Catalog:echo', 'Inventory:sleep', 'Inventory:stock']));
      expect(Object.keys(server.stats().methods).filter((name) => !name.includes(':'))).toEqual([]);
      expect(server.metrics()).toContain('method="Inventory:stock"');
    });

    it('answers a call to a service it does not serve with UNKNOWN_METHOD, and keeps the connection', async () => {
      const { calls, close } = stockMultiplexedClients(port, protocol, { Nope: Inventory, Inventory });
      try {
        const unknown = await calls.Nope!('stock', 'kb-001').catch((e: unknown) => e);
        expect(unknown).toMatchObject({ type: TApplicationExceptionType.UNKNOWN_METHOD, message: expect.stringMatching(/Nope:stock/) });
        expect(await calls.Inventory!('stock', 'mn-003')).toBe(3);
      } finally {
        close();
      }
    });

    it('python3-thrift TMultiplexedProtocol clients get every answer', async () => {
      const { stdout } = await promisify(execFile)('/usr/bin/python3', [CLIENT_SCRIPT, String(port), protocol], { timeout: 20_000 });
      const lines = stdout.trim().split('\n');
      expect(lines.filter((line) => line.startsWith('passed:'))).toHaveLength(5);
      expect(lines.at(-1)).toBe('ok');
    });
  });
}
