/**
 * Peer child process: the bench's protobuf Catalog service (proto/catalog.proto) on a kmux
 * Server with the protobuf codec, `workers` worker threads each running the handler module
 * that wraps the Thrift example's handler (service/catalog-proto-handler.ts).
 */
import { describeTransport, Server, type TransportName } from '@kmux/core';
import { protobufCodec } from '@kmux/protobuf';
import { CATALOG_PROTO, CATALOG_PROTO_HANDLER, CATALOG_PROTO_SERVICE } from '../service/catalog-proto.js';
import { runPeer } from './peer-process.js';

runPeer(async ({ workers, transport = 'auto' }) => {
  const server = new Server({
    codec: protobufCodec({ schema: CATALOG_PROTO, service: CATALOG_PROTO_SERVICE, handler: CATALOG_PROTO_HANDLER }),
    workers,
    transport: transport as TransportName | 'auto',
    logger: { info: () => undefined, warn: console.warn, error: console.error },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return {
    port,
    transport: server.transport ? describeTransport(server.transport) : null,
    protocol: 'kmux-protobuf',
    async close() {
      const workerRequests = server.stats().workers.map((w) => w.completed);
      await server.close();
      return workerRequests;
    },
  };
});
