// The stock Apache Thrift Node client against the example Catalog service on the sockmap
// transport (this host runs as root, so sockmap is available): the kernel splits frames,
// the workers read and answer them without the main thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { Catalog, catalogTypes, expectedHashRounds, startCatalogServer, thrift } from './catalog.js';

describe('thrift binary interop over sockmap', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    ({ server, port } = await startCatalogServer('binary', { transport: 'sockmap' }));
  });
  afterAll(() => server.close());

  it('stock client: pipelined calls complete out of order on one connection, each matched to its reply', async () => {
    expect(server.transport?.name).toBe('sockmap');
    const connection = thrift.createConnection('127.0.0.1', port, { transport: thrift.TFramedTransport, protocol: thrift.TBinaryProtocol });
    const client = thrift.createClient(Catalog, connection);
    const call = (method: string, ...args: unknown[]): Promise<any> =>
      new Promise((resolve, reject) => client[method](...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
    try {
      await Promise.all(Array.from({ length: 20 }, () => call('echo', Buffer.from('warm-up'))));
      const finished: string[] = [];
      const slow = call('sleep', 800).then((ms: number) => finished.push(`sleep ${ms}`));
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
      await Promise.all([slow, ...echoes, ...hashes]);
      expect(finished.at(-1)).toBe('sleep 800');
      await expect(call('lookup', new catalogTypes.Query({ sku: 'nope' }))).rejects.toMatchObject({ sku: 'nope' });
      expect(await call('lookup', new catalogTypes.Query({ sku: 'ms-002' }))).toMatchObject({ title: 'Wireless mouse' });
    } finally {
      connection.end();
    }
  });
});
