import { once } from 'node:events';
import { createServer as createTcpServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { RequestHead, ServerCodec } from '../codec/codec.js';
import {
  DeadlineExceededError,
  KmuxError,
  OverloadedError,
  WorkerDiedError,
} from '../errors.js';
import { encodeFrame } from '../framing/frame-splitter.js';
import { REPLY_FAILED, REPLY_NONE, readReplyBatch } from '../scheduler/batch.js';
import { CostModel } from '../scheduler/cost-model.js';
import { Dispatcher, type Dispatchable } from '../scheduler/dispatcher.js';
import { WorkerPool } from '../scheduler/worker-pool.js';
import { toPrometheus } from '../stats/prometheus.js';
import { ServerStats, type Outcome, type ServerStatsSnapshot } from '../stats/server-stats.js';
import { describeTransport, selectTransport, type TransportReport } from '../transport/select.js';
import { Connection, type CloseCause } from './connection.js';
import { DeadlineQueue } from './deadline-queue.js';
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js';

/**
 * Rounds a client-sent timeout down to 1/16 precision (at most 6 % early), so the deadline
 * queue keeps a bounded number of per-timeout FIFOs whatever timeouts clients send.
 */
function quantizeTimeout(ms: number): number {
  const whole = Math.max(1, Math.floor(ms));
  const step = 2 ** Math.max(0, Math.floor(Math.log2(whole)) - 4);
  return Math.floor(whole / step) * step;
}

interface InFlightRequest extends Dispatchable {
  readonly connection: Connection;
  readonly head: RequestHead;
  /** performance.now() when the frame arrived. */
  readonly receivedAt: number;
}

export interface ListenOptions {
  readonly host?: string;
  readonly port?: number;
}

export interface CloseOptions {
  /** How long in-flight requests may take to finish before connections are cut. Default 10 s. */
  readonly timeoutMs?: number;
}

/**
 * A kmux server: accepts connections, splits their frames, spreads the requests over a
 * pool of worker threads and writes each reply back whole on the connection it came from.
 */
export class Server {
  private readonly options: ResolvedServerOptions;
  private readonly codec: ServerCodec;
  private readonly counters: ServerStats;
  private readonly inFlight = new Map<number, InFlightRequest>();
  private readonly connections = new Set<Connection>();
  private readonly deadlines: DeadlineQueue;
  private readonly costs = new CostModel();
  private pool: WorkerPool | null = null;
  private dispatcher: Dispatcher | null = null;
  private listener: NetServer | null = null;
  private report: TransportReport | null = null;
  private nextKey = 1;
  private nextConnectionId = 1;
  private closing = false;
  private closed: Promise<void> | null = null;

  constructor(options: ServerOptions) {
    this.options = resolveServerOptions(options);
    this.codec = this.options.codec;
    this.counters = new ServerStats(this.options.workers);
    this.deadlines = new DeadlineQueue(
      (key) => this.inFlight.has(key),
      (key) => this.expire(key),
    );
  }

  /** The transport in use and why better ones were not taken; null before listen(). */
  get transport(): TransportReport | null {
    return this.report;
  }

  /** Chooses the transport, starts the workers, then listens. Resolves with the bound address. */
  async listen({ host = '127.0.0.1', port = 0 }: ListenOptions = {}): Promise<{ host: string; port: number }> {
    if (this.listener) throw new Error('server is already listening');
    this.report = await selectTransport(this.options.transport);
    this.options.logger.info(`kmux: transport ${describeTransport(this.report)}`);
    await this.startWorkers();

    const onSocket = (socket: Socket): void => this.accept(socket);
    // Half-open only once a socket is ours: a TLS peer that leaves mid-handshake must not
    // linger half-open, uncounted, keeping close() from completing.
    const listener = this.options.tls
      ? createTlsServer(this.options.tls, (socket) => {
          socket.allowHalfOpen = true;
          onSocket(socket);
        })
      : createTcpServer({ allowHalfOpen: true }, onSocket);
    listener.on('tlsClientError', (error: Error, socket: Socket) => {
      socket.destroy();
      this.counters.connectionError('tls_handshake');
      this.options.logger.warn(`kmux: TLS handshake failed: ${error.message}`);
    });
    this.listener = listener;
    try {
      listener.listen(port, host);
      await once(listener, 'listening');
    } catch (error) {
      // Leave nothing running, so the caller can retry or exit.
      this.listener = null;
      await this.pool?.close();
      this.pool = null;
      throw error;
    }
    const address = listener.address();
    if (address === null || typeof address === 'string') throw new Error('listener has no TCP address');
    return { host: address.address, port: address.port };
  }

  /** Counters, latency percentiles per method and per worker, queue depths. */
  stats(): ServerStatsSnapshot {
    return this.counters.snapshot(this.inFlight.size, this.dispatcher?.queued ?? 0);
  }

  /** The same stats in Prometheus text format. */
  metrics(): string {
    return toPrometheus(this.stats());
  }

  /**
   * Stops accepting connections, answers new requests with "shutting down", lets
   * in-flight requests finish for up to `timeoutMs`, then closes every connection and
   * stops the workers. Requests still running then get no reply.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.closed ??= this.shutDown(options);
    return this.closed;
  }

  private async shutDown({ timeoutMs = 10_000 }: CloseOptions): Promise<void> {
    this.closing = true;
    const listenerClosed = this.listener ? new Promise((resolve) => this.listener!.close(resolve)) : null;
    const drainDeadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 && Date.now() < drainDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const connection of this.connections) connection.end();
    const ended = Date.now() + 1000;
    while (this.connections.size > 0 && Date.now() < ended) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const connection of this.connections) {
      connection.destroy('shutdown', new KmuxError('shutting_down', 'server closed'));
    }
    this.deadlines.clear();
    await this.pool?.close();
    for (let slot = 0; slot < this.options.workers; slot++) this.counters.workerExited(slot);
    await listenerClosed;
  }

  private async startWorkers(): Promise<void> {
    const pool = new WorkerPool(
      { size: this.options.workers, codec: this.codec.worker, resourceLimits: this.options.resourceLimits },
      {
        onReplies: (slot, batch) => this.onReplies(slot, batch),
        onCodecError: (slot, key, message) => this.onCodecError(slot, key, message),
        onWorkerExit: (slot, reason) => this.onWorkerExit(slot, reason),
        onWorkerReady: (slot, threadId) => {
          this.counters.workerReady(slot, threadId);
          this.dispatcher?.workerReady();
        },
      },
    );
    this.pool = pool;
    this.dispatcher = new Dispatcher(pool, this.options, {
      stillWanted: (request) => this.inFlight.has(request.key),
      assigned: (slot) => this.counters.dispatched(slot),
    });
    try {
      await pool.start();
    } catch (error) {
      await pool.close();
      throw error;
    }
  }

  private accept(socket: Socket): void {
    if (this.closing || this.connections.size >= this.options.maxConnections) {
      this.counters.rejectedConnections++;
      socket.destroy();
      return;
    }
    const connection = new Connection(this.nextConnectionId++, socket, this.options, {
      onFrame: (conn, body) => this.onFrame(conn, body),
      onClose: (conn, cause) => this.onConnectionClosed(conn, cause),
    });
    this.connections.add(connection);
    this.counters.acceptedConnections++;
    this.counters.openConnections++;
  }

  private onConnectionClosed(connection: Connection, cause: CloseCause | null): void {
    this.connections.delete(connection);
    this.counters.openConnections--;
    if (cause) {
      this.counters.connectionError(cause.reason);
      if (cause.reason !== 'idle_timeout' && cause.reason !== 'shutdown') {
        this.options.logger.warn(`kmux: connection ${connection.remoteAddress} closed: ${cause.error.message}`);
      }
    }
  }

  private onFrame(connection: Connection, body: Buffer): void {
    this.counters.received++;
    let head: RequestHead;
    try {
      head = this.codec.peek(body);
    } catch (error) {
      // Not this protocol at all: nothing in the stream can be trusted after it.
      const cause = error instanceof Error ? error : new Error(String(error));
      connection.destroy('protocol', cause);
      return;
    }
    const receivedAt = performance.now();
    if (this.closing) return this.reject(connection, head, new KmuxError('shutting_down', 'server is shutting down'));
    if (connection.inFlight >= this.options.maxInFlightPerConnection) {
      return this.reject(connection, head, new OverloadedError('connection', this.options.maxInFlightPerConnection));
    }
    if (this.inFlight.size >= this.options.maxInFlight) {
      return this.reject(connection, head, new OverloadedError('server', this.options.maxInFlight));
    }
    const timeoutMs = this.timeoutFor(head);
    const request: InFlightRequest = {
      key: this.allocateKey(),
      deadline: Date.now() + timeoutMs,
      costUs: this.costs.estimateUs(head.method),
      slot: -1,
      body,
      connection,
      head,
      receivedAt,
    };
    this.inFlight.set(request.key, request);
    connection.requestStarted();
    this.deadlines.add(request.key, timeoutMs, request.deadline);
    this.dispatcher!.submit(request);
  }

  private allocateKey(): number {
    // Keys are u32 on the wire to workers; wrap, skipping any still in flight.
    do {
      this.nextKey = this.nextKey >= 0xffffffff ? 1 : this.nextKey + 1;
    } while (this.inFlight.has(this.nextKey) || this.dispatcher!.holds(this.nextKey));
    return this.nextKey;
  }

  private onReplies(slot: number, batch: ArrayBuffer): void {
    const touched: Connection[] = [];
    readReplyBatch(batch, (key, flags, serviceUs, frame) => {
      this.dispatcher!.done(key);
      const request = this.inFlight.get(key);
      if (!request) {
        // Already answered (deadline) or its connection is gone.
        this.counters.workerDone(slot, null);
        this.counters.dropped++;
        return;
      }
      this.inFlight.delete(key);
      this.costs.observe(request.head.method, serviceUs);
      const latencyUs = (performance.now() - request.receivedAt) * 1000;
      this.counters.workerDone(slot, latencyUs);
      if ((flags & REPLY_NONE) === 0) {
        if (request.connection.isOpen) {
          request.connection.cork();
          touched.push(request.connection);
        }
        if (!request.connection.write(frame)) this.counters.dropped++;
      }
      // After the write: a half-closed connection ends once its last reply is queued.
      request.connection.requestFinished();
      this.counters.requestDone(request.head.method, flags & REPLY_FAILED ? 'failed' : 'ok', latencyUs);
    });
    for (const connection of touched) connection.uncork();
  }

  private onCodecError(slot: number, key: number, message: string): void {
    this.dispatcher!.done(key);
    this.counters.workerDone(slot, null);
    const request = this.inFlight.get(key);
    this.options.logger.error(`kmux: codec ${this.codec.name} threw in worker ${slot}: ${message}`);
    if (request) this.fail(request, new KmuxError('handler', 'internal error in the codec'));
  }

  private onWorkerExit(slot: number, reason: string): void {
    this.options.logger.error(`kmux: worker ${slot} exited: ${reason}`);
    this.counters.workerExited(slot);
    this.dispatcher!.workerExited(slot);
    const error = new WorkerDiedError(slot, reason);
    for (const request of [...this.inFlight.values()]) {
      if (request.slot === slot) this.fail(request, error);
    }
  }

  private expire(key: number): void {
    const request = this.inFlight.get(key);
    if (!request) return;
    this.fail(request, new DeadlineExceededError(request.head.method, this.timeoutFor(request.head)));
  }

  private timeoutFor(head: RequestHead): number {
    const serverTimeout = this.options.methodDeadlines[head.method] ?? this.options.deadlineMs;
    if (head.timeoutMs === undefined || !Number.isFinite(head.timeoutMs) || head.timeoutMs <= 0) return serverTimeout;
    return Math.min(quantizeTimeout(head.timeoutMs), serverTimeout);
  }

  /** Answers an in-flight request with an error; a late worker reply to it is dropped. */
  private fail(request: InFlightRequest, error: KmuxError): void {
    this.inFlight.delete(request.key);
    this.writeError(request.connection, request.head, error);
    request.connection.requestFinished();
    this.counters.requestDone(request.head.method, error.kind, (performance.now() - request.receivedAt) * 1000);
  }

  /** Answers a request that never became in flight. */
  private reject(connection: Connection, head: RequestHead, error: KmuxError): void {
    this.writeError(connection, head, error);
    this.counters.requestDone(head.method, error.kind as Outcome, 0);
  }

  private writeError(connection: Connection, head: RequestHead, error: KmuxError): void {
    if (head.oneway) return;
    if (!connection.write(encodeFrame(this.codec.errorReply(head, error)))) this.counters.dropped++;
  }
}
