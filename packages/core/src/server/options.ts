import { availableParallelism } from 'node:os';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { ResourceLimits } from 'node:worker_threads';
import type { ServerCodec } from '../codec/codec.js';
import { checkKeyUpdateLimits, type KeyUpdateLimits } from '../tls/key-update.js';
import { KTLS_MODES, type KtlsMode } from '../tls/server-tls.js';
import type { TransportName } from '../transport/select.js';
import { SOCKMAP_MAX_FRAME_BYTES } from '../transport/sockmap-transport.js';

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
  /** Serve TLS with these node:tls options (cert, key, ...): the handshake in user space, the records per `ktls`. */
  readonly tls?: TlsOptions & SecureContextOptions;
  /**
   * With `tls`: 'auto' (default) hands each connection to the kernel's TLS record layer after
   * the handshake where the kernel and the negotiated cipher allow, else keeps it on user-space
   * TLS (counted, with the reason); 'require' fails listen() without kTLS and closes connections
   * whose cipher the kernel lacks; 'off' stays in user space.
   */
  readonly ktls?: KtlsMode;
  /**
   * With kTLS on Linux ≥ 6.14: start a TLS 1.3 KeyUpdate (asking the peer for one too) after
   * this many records or bytes sent under one key. Default: 2^24 records for AES-GCM
   * (RFC 8446 §5.5), none for ChaCha20-Poly1305. The peer's KeyUpdates are followed either way.
   */
  readonly ktlsKeyUpdateAfter?: KeyUpdateLimits;
  /**
   * Largest frame body accepted; a larger length prefix closes the connection. Default 16 MiB,
   * as Apache Thrift; with `transport: 'sockmap'`, SOCKMAP_MAX_FRAME_BYTES (3 MiB), the most
   * sockmap can deliver (a larger value fails listen() there).
   */
  readonly maxFrameBytes?: number;
  /** Open connections; more are refused (closed at once, counted). Default 10,000. */
  readonly maxConnections?: number;
  /**
   * Requests in flight on one connection; past it requests get an "overloaded" error reply.
   * Refusing costs too: a connection refused (past this or its share of maxInFlight) more
   * than 4 times per request served, after a first 4 × this, is no longer read until half
   * of its requests in flight are done (user space and native; the rest waits in TCP).
   * Default 1,024.
   */
  readonly maxInFlightPerConnection?: number;
  /**
   * Requests in flight in the whole server. Past it (user-space transport) a request gets an
   * "overloaded" error reply only if its connection holds at least its fair share,
   * maxInFlight ÷ open connections: a flooding connection cannot get a well-behaved one
   * refused (so the total can pass maxInFlight by what connections under their share add, at
   * most maxInFlight again). On KCM and sockmap each worker takes maxInFlight / workers of
   * them, and past that still a connection holding less than that ÷ connections holding
   * requests; native sheds by maxInFlight ÷ connections holding requests. Default 16,384.
   */
  readonly maxInFlight?: number;
  /** Requests a worker holds at once; the rest wait in the main thread for the least-loaded worker. Default 32. */
  readonly workerQueueDepth?: number;
  /**
   * Estimated service time (µs) a busy worker may hold before it gets no more requests (an
   * idle worker always gets one). Estimates are per method, learned from the time each
   * call keeps a worker busy. Bounds what a batch not yet started holds behind its first call. Default 500.
   */
  readonly workerBacklogUs?: number;
  /**
   * A worker busy with a call takes another request only while that call has run less than
   * this (µs); else the request waits in the main thread for the first worker that frees up.
   * So a fast call never queues behind a long-running one, even when both are calls of the
   * same method. Default 50. See docs/tail-latency.md.
   */
  readonly busyWorkerGraceUs?: number;
  /**
   * Methods known to be slow (e.g. ['report', 'export']): they run only on the first
   * `slowWorkers` workers, so the others stay free for fast calls. Default none.
   */
  readonly slowMethods?: readonly string[];
  /** Workers that may run `slowMethods`. Default half the workers (at least 1). */
  readonly slowWorkers?: number;
  /**
   * EEVDF time slice (µs, at least 100) the main thread and the workers ask the kernel for
   * (sched_setattr, Linux ≥ 6.12, unprivileged): a short slice lets them preempt a CPU-bound
   * handler sooner. Kernels that refuse it are skipped silently (stats().threadSlice says);
   * false leaves the kernel's default. Default 100.
   */
  readonly threadSliceUs?: number | false;
  /** Default per-request deadline, from frame received to reply. Default 30 s. */
  readonly deadlineMs?: number;
  /** Per-method deadline overrides, by method name. */
  readonly methodDeadlines?: Readonly<Record<string, number>>;
  /** A connection with nothing in flight and nothing received for this long is closed. Default 120 s. */
  readonly idleTimeoutMs?: number;
  /**
   * Ends each connection gracefully after this long, ±10 % jitter: it refuses new requests
   * unrun (`shutting_down`), answers those it took, then closes once the client is quiet, so
   * clients reconnect and an L4 balancer or DNS spreads them again
   * (docs/thrift-deployment.md#rebalancing-maximum-connection-age). Default false (off): stock
   * clients pass the refusals to their callers; the kmux clients send them again.
   */
  readonly maxConnectionAgeMs?: number | false;
  /** Reply bytes queued for a client that does not read, before the server stops reading its requests. Default 8 MiB. */
  readonly maxPendingWriteBytes?: number;
  /**
   * Time a connection may take to complete a frame once its first byte arrived; past it the
   * connection is closed (`frame_timeout`), however often bytes trickle in. Default 30 s.
   */
  readonly frameTimeoutMs?: number;
  /**
   * Bytes the server holds for all connections together: partial frames, requests in flight
   * and replies not yet sent. Past it new requests are answered "overloaded" and connections
   * holding bytes are no longer read until usage is back under ¾ of it (user-space
   * transport). Default 256 MiB, or maxFrameBytes if larger.
   */
  readonly maxBufferedBytes?: number;
  /** V8 heap limits for each worker; a worker exceeding them dies and is replaced. */
  readonly resourceLimits?: ResourceLimits;
  /** Where the server logs its transport choice and errors. Default: console. */
  readonly logger?: Logger;
}

export type ResolvedServerOptions = Required<Omit<ServerOptions, 'tls' | 'resourceLimits' | 'ktlsKeyUpdateAfter'>> &
  Pick<ServerOptions, 'tls' | 'resourceLimits' | 'ktlsKeyUpdateAfter'>;

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;
const MAX_TIMER_MS = 0x7fffffff;

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function sliceUs(value: number | false): number | false {
  if (value === false) return false;
  if (positiveInteger('threadSliceUs', value) < 100) throw new RangeError(`threadSliceUs must be at least 100 (the kernel's minimum), got ${value}`);
  return value;
}

function connectionAge(value: number | false): number | false {
  if (value === false) return false;
  // The jitter adds up to 10 %: the timer must still fit.
  if (positiveInteger('maxConnectionAgeMs', value) > MAX_TIMER_MS / 1.1) throw new RangeError(`maxConnectionAgeMs must be at most ${Math.floor(MAX_TIMER_MS / 1.1)} ms`);
  return value;
}

function defaultMaxFrameBytes(transport: ServerOptions['transport']): number {
  return transport === 'sockmap' ? SOCKMAP_MAX_FRAME_BYTES : DEFAULT_MAX_FRAME_BYTES;
}

function ktlsMode(options: ServerOptions): KtlsMode {
  const mode = options.ktls ?? (options.tls ? 'auto' : 'off');
  if (!KTLS_MODES.includes(mode)) throw new RangeError(`ktls must be one of ${KTLS_MODES.join(', ')}, got ${String(mode)}`);
  if (mode !== 'off' && !options.tls) throw new RangeError(`ktls '${mode}' needs tls (a certificate and key)`);
  return mode;
}

export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const resolved: ResolvedServerOptions = {
    codec: options.codec,
    workers: positiveInteger('workers', options.workers ?? availableParallelism()),
    transport: options.transport ?? 'auto',
    tls: options.tls,
    ktls: ktlsMode(options),
    ktlsKeyUpdateAfter: options.ktlsKeyUpdateAfter && checkKeyUpdateLimits(options.ktlsKeyUpdateAfter),
    maxFrameBytes: positiveInteger('maxFrameBytes', options.maxFrameBytes ?? defaultMaxFrameBytes(options.transport)),
    maxConnections: positiveInteger('maxConnections', options.maxConnections ?? 10_000),
    maxInFlightPerConnection: positiveInteger('maxInFlightPerConnection', options.maxInFlightPerConnection ?? 1024),
    maxInFlight: positiveInteger('maxInFlight', options.maxInFlight ?? 16_384),
    workerQueueDepth: positiveInteger('workerQueueDepth', options.workerQueueDepth ?? 32),
    workerBacklogUs: positiveInteger('workerBacklogUs', options.workerBacklogUs ?? 500),
    busyWorkerGraceUs: positiveInteger('busyWorkerGraceUs', options.busyWorkerGraceUs ?? 50),
    slowMethods: options.slowMethods ?? [],
    threadSliceUs: sliceUs(options.threadSliceUs ?? 100),
    slowWorkers: positiveInteger('slowWorkers', options.slowWorkers ?? Math.max(1, Math.floor((options.workers ?? availableParallelism()) / 2))),
    deadlineMs: positiveInteger('deadlineMs', options.deadlineMs ?? 30_000),
    methodDeadlines: options.methodDeadlines ?? {},
    idleTimeoutMs: positiveInteger('idleTimeoutMs', options.idleTimeoutMs ?? 120_000),
    maxConnectionAgeMs: connectionAge(options.maxConnectionAgeMs ?? false),
    maxPendingWriteBytes: positiveInteger('maxPendingWriteBytes', options.maxPendingWriteBytes ?? 8 * 1024 * 1024),
    frameTimeoutMs: positiveInteger('frameTimeoutMs', options.frameTimeoutMs ?? 30_000),
    maxBufferedBytes: positiveInteger(
      'maxBufferedBytes',
      options.maxBufferedBytes ?? Math.max(DEFAULT_MAX_BUFFERED_BYTES, options.maxFrameBytes ?? defaultMaxFrameBytes(options.transport)),
    ),
    resourceLimits: options.resourceLimits,
    logger: options.logger ?? console,
  };
  for (const [method, ms] of Object.entries(resolved.methodDeadlines)) positiveInteger(`methodDeadlines.${method}`, ms);
  if (resolved.slowWorkers > resolved.workers) {
    throw new RangeError(`slowWorkers (${resolved.slowWorkers}) must be at most workers (${resolved.workers})`);
  }
  if (resolved.maxFrameBytes > 0x7fffffff) throw new RangeError('maxFrameBytes must fit in a signed 32-bit length');
  // Node turns a longer timer into 1 ms: a huge timeout would close everything at once.
  for (const name of ['deadlineMs', 'idleTimeoutMs', 'frameTimeoutMs'] as const) {
    if (resolved[name] > MAX_TIMER_MS) throw new RangeError(`${name} must be at most ${MAX_TIMER_MS} ms`);
  }
  if (resolved.maxBufferedBytes < resolved.maxFrameBytes) {
    // A frame of maxFrameBytes could then never be read whole.
    throw new RangeError(`maxBufferedBytes (${resolved.maxBufferedBytes}) must be at least maxFrameBytes (${resolved.maxFrameBytes})`);
  }
  return resolved;
}
