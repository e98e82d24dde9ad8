import { availableParallelism } from 'node:os';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { ResourceLimits } from 'node:worker_threads';
import type { ServerCodec } from '../codec/codec.js';
import type { TransportName } from '../transport/select.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface ServerOptions {
  /** The wire protocol: `thriftCodec(...)`, `rawCodec(...)` or your own. */
  readonly codec: ServerCodec;
  /** Worker threads. Default: the number of CPUs. */
  readonly workers?: number;
  /** `auto` (default) takes the best transport available; an explicit one fails at start if unavailable. */
  readonly transport?: TransportName | 'auto';
  /** Serve TLS (user-space, node:tls) with these options (cert, key, ...). */
  readonly tls?: TlsOptions & SecureContextOptions;
  /** Largest frame body accepted; a larger length prefix closes the connection. Default 16 MiB, as Apache Thrift. */
  readonly maxFrameBytes?: number;
  /** Open connections; more are refused (closed at once, counted). Default 10,000. */
  readonly maxConnections?: number;
  /** Requests in flight on one connection; past it requests get an "overloaded" error reply. Default 1,024. */
  readonly maxInFlightPerConnection?: number;
  /** Requests in flight in the whole server; past it requests get an "overloaded" error reply. Default 16,384. */
  readonly maxInFlight?: number;
  /** Requests a worker holds at once; the rest wait in the main thread for the least-loaded worker. Default 32. */
  readonly workerQueueDepth?: number;
  /**
   * Estimated service time (µs) a worker may hold before it gets no more requests (an
   * idle worker always gets one). Estimates are per method, learned from the time each
   * call keeps a worker busy. Keeps cheap calls from queueing behind slow ones. Default 2,000.
   */
  readonly workerBacklogUs?: number;
  /** Default per-request deadline, from frame received to reply. Default 30 s. */
  readonly deadlineMs?: number;
  /** Per-method deadline overrides, by method name. */
  readonly methodDeadlines?: Readonly<Record<string, number>>;
  /** A connection with nothing in flight and nothing received for this long is closed. Default 120 s. */
  readonly idleTimeoutMs?: number;
  /** Reply bytes queued for a client that does not read, before the server stops reading its requests. Default 8 MiB. */
  readonly maxPendingWriteBytes?: number;
  /** V8 heap limits for each worker; a worker exceeding them dies and is replaced. */
  readonly resourceLimits?: ResourceLimits;
  /** Where the server logs its transport choice and errors. Default: console. */
  readonly logger?: Logger;
}

export type ResolvedServerOptions = Required<Omit<ServerOptions, 'tls' | 'resourceLimits'>> &
  Pick<ServerOptions, 'tls' | 'resourceLimits'>;

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const resolved: ResolvedServerOptions = {
    codec: options.codec,
    workers: positiveInteger('workers', options.workers ?? availableParallelism()),
    transport: options.transport ?? 'auto',
    tls: options.tls,
    maxFrameBytes: positiveInteger('maxFrameBytes', options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES),
    maxConnections: positiveInteger('maxConnections', options.maxConnections ?? 10_000),
    maxInFlightPerConnection: positiveInteger('maxInFlightPerConnection', options.maxInFlightPerConnection ?? 1024),
    maxInFlight: positiveInteger('maxInFlight', options.maxInFlight ?? 16_384),
    workerQueueDepth: positiveInteger('workerQueueDepth', options.workerQueueDepth ?? 32),
    workerBacklogUs: positiveInteger('workerBacklogUs', options.workerBacklogUs ?? 2_000),
    deadlineMs: positiveInteger('deadlineMs', options.deadlineMs ?? 30_000),
    methodDeadlines: options.methodDeadlines ?? {},
    idleTimeoutMs: positiveInteger('idleTimeoutMs', options.idleTimeoutMs ?? 120_000),
    maxPendingWriteBytes: positiveInteger('maxPendingWriteBytes', options.maxPendingWriteBytes ?? 8 * 1024 * 1024),
    resourceLimits: options.resourceLimits,
    logger: options.logger ?? console,
  };
  for (const [method, ms] of Object.entries(resolved.methodDeadlines)) positiveInteger(`methodDeadlines.${method}`, ms);
  if (resolved.maxFrameBytes > 0x7fffffff) throw new RangeError('maxFrameBytes must fit in a signed 32-bit length');
  return resolved;
}
