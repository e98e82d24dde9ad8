// The stock Apache Thrift Node client, and kmux's own Thrift client, against a kmux Server
// with 2 workers serving the example Catalog service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { createThriftClient, type ThriftProtocolName } from '@kmux/thrift';
import { Catalog, catalogTypes, expectPipelinedOutOfOrder, startCatalogServer, stockClient, thrift } from './catalog.js';

const { TApplicationException, TApplicationExceptionType } = thrift.Thrift;

for (const protocol of ['binary', 'compact'] as const satisfies readonly ThriftProtocolName[]) {
  describe(`thrift ${protocol} interop`, () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      ({ server, port } = await startCatalogServer(protocol, { methodDeadlines: { sleep: 1800 } }));
    });
    afterAll(() => server.close());

    it('stock client: pipelined calls complete out of order, each matched to its own reply', async () => {
      const { call, close } = stockClient(port, protocol);
      try {
        await expectPipelinedOutOfOrder(call, 1500);
      } finally {
        close();
      }
    });

    it('stock client on its default buffered (unframed) transport: pipelined calls, out of order', async () => {
      const { call, close } = stockClient(port, protocol, 'buffered');
      try {
        await expectPipelinedOutOfOrder(call, 1500);
        const notFound = await call('lookup', new catalogTypes.Query({ sku: 'nope-0' })).catch((e: unknown) => e);
        expect(notFound).toBeInstanceOf(catalogTypes.ItemNotFound);
        expect(await call('echo', Buffer.alloc(300_000, 7))).toEqual(Buffer.alloc(300_000, 7));
      } finally {
        close();
      }
    });

    it('stock client: declared exceptions arrive as their declared types', async () => {
      const { call, close } = stockClient(port, protocol);
      try {
        const notFound = await call('lookup', new catalogTypes.Query({ sku: 'nope-1' })).catch((e: unknown) => e);
        expect(notFound).toBeInstanceOf(catalogTypes.ItemNotFound);
        expect(notFound).toMatchObject({ sku: 'nope-1', message: 'no item with sku nope-1' });
        const invalid = await call('hashRounds', Buffer.from('x'), 0).catch((e: unknown) => e);
        expect(invalid).toBeInstanceOf(catalogTypes.InvalidArgument);
      } finally {
        close();
      }
    });

    it('kmux client: passes ktls to the core client, which refuses it without tls', () => {
      const service = Catalog as typeof import('../../examples/thrift/gen-nodejs/Catalog.js');
      expect(() => createThriftClient(service, { port, protocol, ktls: 'auto' })).toThrow(/ktls 'auto' needs tls/);
    });

    it('kmux client: passes ktlsKeyUpdateAfter to the core client, which checks it', () => {
      const service = Catalog as typeof import('../../examples/thrift/gen-nodejs/Catalog.js');
      expect(() => createThriftClient(service, { port, protocol, ktlsKeyUpdateAfter: { bytes: -1 } })).toThrow(/ktlsKeyUpdateAfter.bytes must be a positive number, got -1/);
    });

    it('kmux client: typed promise methods, pipelined, with exceptions, oneway and deadlines', async () => {
      const client = createThriftClient(Catalog as typeof import('../../examples/thrift/gen-nodejs/Catalog.js'), { port, protocol });
      try {
        const slow = client.sleep(200);
        const lookups = await Promise.all(
          ['kb-001', 'ms-002', 'mn-003'].map((sku) => client.lookup(new catalogTypes.Query({ sku, withThumbnail: true }))),
        );
        expect(lookups.map((item) => item.sku)).toEqual(['kb-001', 'ms-002', 'mn-003']);
        expect(lookups[0]!.thumbnail).toHaveLength(32);
        expect(await client.echo(Buffer.from([0, 1, 2]))).toEqual(Buffer.from([0, 1, 2]));
        expect(await client.recordView('kb-001')).toBeUndefined(); // oneway: resolves once sent
        expect(await slow).toBe(200);

        await expect(client.lookup(new catalogTypes.Query({ sku: 'nope-2' }))).rejects.toBeInstanceOf(catalogTypes.ItemNotFound);
        // sleep's deadline is 1800 ms: the core fails it, and the codec answers with an exception.
        const late = await client.sleep(4_000).catch((e: unknown) => e);
        expect(late).toBeInstanceOf(TApplicationException);
        expect(late).toMatchObject({ type: TApplicationExceptionType.INTERNAL_ERROR, message: expect.stringMatching(/^deadline exceeded/) });
        // The connection is still good afterwards.
        expect(await client.sleep(1)).toBe(1);
        // Arguments that cannot be encoded reject the call without corrupting the next one.
        await expect(client.echo(42 as unknown as Buffer)).rejects.toThrow(/without a string\/Buffer/);
        expect(await client.echo(Buffer.from('after'))).toEqual(Buffer.from('after'));
      } finally {
        client.close();
      }
    });
  });
}
