/**
 * Peer child process: the stock Apache Thrift Node server (framed transport, binary
 * protocol) running the example Catalog handler on one thread — the baseline kmux is
 * measured against. thrift.Q is shimmed (see service/thrift-q-shim.ts), so the handler
 * runs unchanged.
 */
import type { AddressInfo, Socket } from 'node:net';
import thrift from 'thrift';
import { catalogHandler, catalogService } from '../service/catalog.js';
import { runPeer } from './peer-process.js';

runPeer(async () => {
  const server = thrift.createServer(catalogService.Processor as never, catalogHandler, {
    transport: thrift.TFramedTransport,
    protocol: thrift.TBinaryProtocol,
  });
  // The stock server re-emits every connection's errors (e.g. a reset at the end of a run);
  // unhandled, one would kill the process.
  server.on('error', (error: Error) => console.error(`stock thrift server: ${error.message}`));
  // Stock Thrift leaves Nagle on: behind a slow call two replies leave back to back and the
  // second waits for the client's delayed ACK. Off here, so tails compare servers, not Nagle.
  server.on('connection', (socket: Socket) => socket.setNoDelay(true));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    transport: null,
    protocol: 'thrift-binary-framed',
    close: () => new Promise((resolve) => server.close(() => resolve(null))),
  };
});
