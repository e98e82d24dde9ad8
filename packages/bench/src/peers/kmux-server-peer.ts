/**
 * What every kmux peer process does with its codec: a kmux Server with `workers` worker
 * threads on the requested transport, reporting the transport in use and, at close, the
 * requests each worker completed.
 */
import { describeTransport, Server, type ServerCodec, type TransportName } from '@kmux/core';
import type { PeerProtocol } from './peer-messages.js';
import { runPeer } from './peer-process.js';

export function runKmuxPeer(codec: ServerCodec, protocol: PeerProtocol): void {
  runPeer(async ({ workers, transport = 'auto', kmuxOptions = {} }) => {
    const server = new Server({
      ...kmuxOptions,
      codec,
      workers,
      transport: transport as TransportName | 'auto',
      // The bench prints the transport itself; keep the progress line clean.
      logger: { info: () => undefined, warn: console.warn, error: console.error },
    });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    return {
      port,
      transport: server.transport ? describeTransport(server.transport) : null,
      protocol,
      async close() {
        const workerRequests = server.stats().workers.map((w) => w.completed);
        await server.close();
        return workerRequests;
      },
    };
  });
}
