/**
 * Peer child process: @grpc/grpc-js serving the bench's protobuf Catalog service
 * (proto/catalog.proto) over HTTP/2 on its one thread, each method calling the handler
 * module kmux's protobuf peer runs (the Thrift example's handler underneath).
 */
import * as grpc from '@grpc/grpc-js';
import { RpcError } from '@kmux/protobuf';
import { catalogGrpcService, GRPC_METHODS } from '../grpc/catalog-grpc.js';
import * as handler from '../service/catalog-proto-handler.js';
import { runPeer } from './peer-process.js';

const SHUTDOWN_GRACE_MS = 2000;

type Request = Record<string, unknown>;
type Handler = (request: Request) => unknown;

/** A grpc-js unary method on a handler function; RpcError statuses are gRPC's codes. */
function unary(fn: Handler): grpc.handleUnaryCall<Request, unknown> {
  return (call, callback) => {
    const fail = (error: unknown) =>
      callback(RpcError.is(error) ? { code: error.status, details: error.message } : { code: grpc.status.INTERNAL, details: String(error) });
    try {
      const result = fn(call.request);
      // echo answers synchronously: no promise, no extra turn, as a plain grpc-js handler would.
      if (result instanceof Promise) result.then((reply) => callback(null, reply), fail);
      else callback(null, result);
    } catch (error) {
      fail(error);
    }
  };
}

runPeer(async () => {
  const server = new grpc.Server();
  server.addService(catalogGrpcService, Object.fromEntries(GRPC_METHODS.map((m) => [m, unary(handler[m] as unknown as Handler)])));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    port,
    transport: null,
    protocol: 'grpc',
    async close() {
      const graceful = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const timer = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
      await graceful;
      clearTimeout(timer);
      return null;
    },
  };
});
