// The stock Apache Thrift Node client against the example Catalog service on the transports
// whose workers read frames without the main thread: sockmap (this host runs as root, so it is
// available; the kernel splits frames) and native (the addon's I/O thread splits them).
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { catalogTypes, expectPipelinedOutOfOrder, startCatalogServer, stockClient, unframedEcho } from './catalog.js';

for (const transport of ['sockmap', 'native'] as const) describe(`thrift binary interop over ${transport}`, () => {
  let server: Server;
  let port: number;
  const warnings: string[] = [];
  beforeAll(async () => {
    const logger = { info: () => undefined, warn: (line: string) => warnings.push(line), error: console.error };
    ({ server, port } = await startCatalogServer('binary', { transport, logger }));
  });
  afterAll(() => server.close());

  it('stock client: pipelined calls complete out of order on one connection, each matched to its reply', async () => {
    expect(server.transport?.name).toBe(transport);
    const { call, close } = stockClient(port, 'binary');
    try {
      await expectPipelinedOutOfOrder(call, 800);
      await expect(call('lookup', new catalogTypes.Query({ sku: 'nope' }))).rejects.toMatchObject({ sku: 'nope' });
      expect(await call('lookup', new catalogTypes.Query({ sku: 'ms-002' }))).toMatchObject({ title: 'Wireless mouse' });
    } finally {
      close();
    }
  });

  it('refuses an unframed (buffered-transport) client with its reason, counted, and logs its address', async () => {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const local = `127.0.0.1:${socket.localPort}`;
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.on('error', () => undefined); // the refusal may arrive as a reset
    socket.write(unframedEcho('binary', Buffer.from('no length prefix')));
    await closed;
    await expect.poll(() => server.stats().connectionErrors.unframed).toBe(1);
    expect(warnings.find((line) => line.includes(local))).toMatch(new RegExp(`closed: unframed Thrift: use TFramedTransport .*\\(transport ${transport}\\)`));
  });
});
