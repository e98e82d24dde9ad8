/**
 * Peer child process: the example Catalog service on a kmux Server — the main thread
 * splits frames and spreads them over `workers` worker threads, each running the handler.
 */
import { describeTransport, Server, type TransportName } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { CATALOG_HANDLER_MODULE, CATALOG_SERVICE_MODULE } from '../service/catalog-modules.js';
import { runPeer } from './peer-process.js';

runPeer(async ({ workers, transport = 'auto' }) => {
  const server = new Server({
    codec: thriftCodec({ service: CATALOG_SERVICE_MODULE, handler: CATALOG_HANDLER_MODULE, protocol: 'binary' }),
    workers,
    transport: transport as TransportName | 'auto',
    // The bench prints the transport itself; keep the progress line clean.
    logger: { info: () => undefined, warn: console.warn, error: console.error },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return {
    port,
    transport: server.transport ? describeTransport(server.transport) : null,
    protocol: 'thrift-binary-framed',
    async close() {
      const workerRequests = server.stats().workers.map((w) => w.completed);
      await server.close();
      return workerRequests;
    },
  };
});
