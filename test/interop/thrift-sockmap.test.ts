// The stock Apache Thrift Node client against the example Catalog service on the sockmap
// transport (this host runs as root, so sockmap is available): the kernel splits frames,
// the workers read and answer them without the main thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { catalogTypes, expectPipelinedOutOfOrder, startCatalogServer, stockClient } from './catalog.js';

describe('thrift binary interop over sockmap', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    ({ server, port } = await startCatalogServer('binary', { transport: 'sockmap' }));
  });
  afterAll(() => server.close());

  it('stock client: pipelined calls complete out of order on one connection, each matched to its reply', async () => {
    expect(server.transport?.name).toBe('sockmap');
    const { call, close } = stockClient(port, 'binary');
    try {
      await expectPipelinedOutOfOrder(call, 800);
      await expect(call('lookup', new catalogTypes.Query({ sku: 'nope' }))).rejects.toMatchObject({ sku: 'nope' });
      expect(await call('lookup', new catalogTypes.Query({ sku: 'ms-002' }))).toMatchObject({ title: 'Wireless mouse' });
    } finally {
      close();
    }
  });
});
