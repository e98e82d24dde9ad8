/**
 * Peer child process: what users hand-make today to use more than one core with Thrift —
 * the stock Apache Thrift server (framed + binary) whose handler sends every call to a
 * piscina pool of `workers` threads as its own task (piscina-task.ts), running the same
 * example handler there.
 */
import type { AddressInfo, Socket } from 'node:net';
import { createRequire } from 'node:module';
import { Piscina } from 'piscina';
import thrift from 'thrift';
import { CATALOG_SERVICE_MODULE } from '../service/catalog-modules.js';
import { catalogService } from '../service/catalog.js';
import type { CatalogTask, CatalogTaskResult } from './piscina-task.js';
import { runPeer } from './peer-process.js';

type Callback = (error: unknown, result?: unknown) => void;
type ExceptionClass = new (fields: Record<string, unknown>) => Error;

const types = createRequire(CATALOG_SERVICE_MODULE)('./catalog_types') as Record<string, ExceptionClass>;
const METHODS = ['lookup', 'hashRounds', 'echo', 'sleep', 'blockFor', 'recordView'];

runPeer(async ({ workers }) => {
  const pool = new Piscina<CatalogTask, CatalogTaskResult>({
    filename: new URL('./piscina-task.js', import.meta.url).href,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: Number.POSITIVE_INFINITY,
  });
  const perThread = new Map<number, number>();
  // Callback style for every method: the generated processor then never needs thrift.Q, and
  // a declared exception (rebuilt with its own class) becomes the method's declared reply.
  const handler = Object.fromEntries(
    METHODS.map((method) => [
      method,
      (...args: unknown[]) => {
        // Thrift values are never functions; oneway calls (recordView) come without a callback.
        const done: Callback = typeof args.at(-1) === 'function' ? (args.pop() as Callback) : () => undefined;
        pool.run({ method, args }).then(
          (result) => {
            perThread.set(result.thread, (perThread.get(result.thread) ?? 0) + 1);
            if ('ok' in result) done(null, toBuffer(result.ok));
            else done(new types[result.thrown.type]!(result.thrown.fields));
          },
          (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
        );
      },
    ]),
  );
  const server = thrift.createServer(catalogService.Processor as never, handler, {
    transport: thrift.TFramedTransport,
    protocol: thrift.TBinaryProtocol,
  });
  server.on('error', (error: Error) => console.error(`piscina thrift server: ${error.message}`));
  // Stock Thrift leaves Nagle on: behind a slow call two replies leave back to back and the
  // second waits for the client's delayed ACK. Off here, so tails compare servers, not Nagle.
  server.on('connection', (socket: Socket) => socket.setNoDelay(true));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    transport: null,
    protocol: 'thrift-binary-framed',
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.destroy();
      return [...perThread.values()];
    },
  };
});

/** Binary results come back from the pool as Uint8Arrays; Thrift writes Buffers. */
function toBuffer(value: unknown): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
}
