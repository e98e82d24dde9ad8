// The stock Apache Thrift Node client, and kmux's own Thrift client, against a kmux Server
// with 2 workers serving the example Catalog service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { createThriftClient, type ThriftProtocolName } from '@kmux/thrift';
import { Catalog, catalogTypes, expectedHashRounds, startCatalogServer, thrift } from './catalog.js';

const { TApplicationException, TApplicationExceptionType } = thrift.Thrift;

for (const protocol of ['binary', 'compact'] as const satisfies readonly ThriftProtocolName[]) {
  describe(`thrift ${protocol} interop`, () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      ({ server, port } = await startCatalogServer(protocol, { methodDeadlines: { sleep: 1800 } }));
    });
    afterAll(() => server.close());

    /** The stock client over one framed connection, its callback methods as promises. */
    function stockClient() {
      const connection = thrift.createConnection('127.0.0.1', port, {
        transport: thrift.TFramedTransport,
        protocol: protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol,
      });
      const client = thrift.createClient(Catalog, connection);
      const call = (method: string, ...args: unknown[]): Promise<any> =>
        new Promise((resolve, reject) => client[method](...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
      return { call, close: () => connection.end() };
    }

    it('stock client: pipelined calls complete out of order, each matched to its own reply', async () => {
      const { call, close } = stockClient();
      try {
        // Warm both workers up first, so no fast call waits for a worker to load the service.
        await Promise.all(Array.from({ length: 20 }, () => call('echo', Buffer.from('warm-up'))));
        const finished: string[] = [];
        const slow = call('sleep', 1500).then((ms) => finished.push(`sleep ${ms}`));
        const echoes = Array.from({ length: 200 }, (_, i) => {
          const payload = Buffer.from(`payload ${i} `.repeat(1 + (i % 7)));
          return call('echo', payload).then((reply: Buffer) => {
            expect(reply).toEqual(payload);
            finished.push('echo');
          });
        });
        const data = Buffer.from('catalog');
        const hashes = [1, 50, 400].map((rounds) =>
          call('hashRounds', data, rounds).then((digest: Buffer) => expect(digest).toEqual(expectedHashRounds(data, rounds))),
        );
        const item = call('lookup', new catalogTypes.Query({ sku: 'ms-002' }));
        await Promise.all([slow, ...echoes, ...hashes]);
        expect(await item).toMatchObject({ sku: 'ms-002', title: 'Wireless mouse', priceCents: 2900 });
        // The slow call went out first; the 200 fast ones overtook it on the same connection.
        expect(finished).toHaveLength(201);
        expect(finished.at(-1)).toBe('sleep 1500');
      } finally {
        close();
      }
    });

    it('stock client: declared exceptions arrive as their declared types', async () => {
      const { call, close } = stockClient();
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
