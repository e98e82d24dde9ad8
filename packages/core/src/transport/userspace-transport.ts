/**
 * The user-space transport: the main thread splits each connection's frames, reads the
 * request heads (codec.peek) for limits and deadlines, and moves requests to the workers
 * and replies back in batches (scheduler/dispatcher.ts, scheduler/batch.ts), writing each
 * reply whole on its connection.
 */
import type { RequestHead } from '../codec/codec.js';
import { DeadlineExceededError, KmuxError, NOT_RUN_SHUTTING_DOWN, OverloadedError, WorkerDiedError } from '../errors.js';
import { encodeFrame } from '../framing/frame-splitter.js';
import { REPLY_EXCEPTION, REPLY_FAILED, REPLY_NONE, REPLY_WENT_ASYNC, readReplyBatch } from '../scheduler/batch.js';
import { CostModel } from '../scheduler/cost-model.js';
import { Dispatcher, type Dispatchable } from '../scheduler/dispatcher.js';
import { BufferBudget } from '../server/buffer-budget.js';
import { Connection, type CloseCause } from '../server/connection.js';
import { DeadlineQueue } from '../server/deadline-queue.js';
import { timeoutFor } from '../server/timeouts.js';
import { QUIET_BEFORE_END_MS } from '../server/connection-age.js';
import type { Outcome } from '../stats/outcome.js';
import type { PlaintextSocket } from '../tls/server-tls.js';
import type { ServerTransport, TransportContext } from './transport.js';

interface InFlightRequest extends Dispatchable {
  readonly connection: Connection;
  readonly head: RequestHead;
  /** performance.now() when the frame arrived. */
  readonly receivedAt: number;
  /** Charged to the budget until the request is answered (the body itself moves on to a worker). */
  readonly bytes: number;
}

function replyOutcome(flags: number): Outcome {
  if (flags & REPLY_EXCEPTION) return 'exception';
  return flags & REPLY_FAILED ? 'failed' : 'ok';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));


export class UserspaceTransport implements ServerTransport {
  readonly takesFd = false;
  private readonly inFlightRequests = new Map<number, InFlightRequest>();
  private readonly connections = new Set<Connection>();
  private readonly deadlines: DeadlineQueue;
  private readonly dispatcher: Dispatcher;
  private readonly costs = new CostModel();
  private readonly slowMethods: ReadonlySet<string>;
  /**
   * The errors refusals reply with, built once: a flood past a limit is refused thousands of
   * times a second, and building an Error (its stack trace) each time was the main thread's
   * largest cost under a flood.
   */
  private readonly refusals: Readonly<Record<'connection' | 'server' | 'memory', OverloadedError>>;
  private readonly budget: BufferBudget;
  private nextKey = 1;
  private nextConnectionId = 1;
  private closing = false;

  constructor(private readonly context: TransportContext) {
    this.budget = new BufferBudget(context.options.maxBufferedBytes);
    context.counters.buffers = this.budget;
    this.deadlines = new DeadlineQueue(
      (key) => this.inFlightRequests.has(key),
      (key) => this.expire(key),
    );
    this.slowMethods = new Set(context.options.slowMethods);
    const { maxInFlightPerConnection, maxInFlight, maxBufferedBytes } = context.options;
    this.refusals = {
      connection: new OverloadedError('connection', maxInFlightPerConnection),
      server: new OverloadedError('server', maxInFlight),
      memory: new OverloadedError('memory', maxBufferedBytes),
    };
    this.dispatcher = new Dispatcher(context.pool, context.pool.clocks, context.options, {
      stillWanted: (request) => this.inFlightRequests.has(request.key),
      assigned: (slot) => context.counters.dispatched(slot),
    });
  }

  get inFlight(): number {
    return this.inFlightRequests.size;
  }

  get queued(): number {
    return this.dispatcher.queued;
  }

  accept(socket: PlaintextSocket): void {
    const connection = new Connection(
      this.nextConnectionId++,
      socket,
      this.context.options,
      this.budget,
      {
        onFrame: (conn, body) => this.onFrame(conn, body),
        onClose: (conn, cause) => this.onConnectionClosed(conn, cause),
      },
      this.context.codec.unframed,
    );
    this.connections.add(connection);
    this.context.counters.acceptedConnections++;
    this.context.counters.openConnections++;
  }

  workerReady(): void {
    this.dispatcher.workerReady();
  }

  workerExited(slot: number, reason: string): void {
    this.dispatcher.workerExited(slot);
    const error = new WorkerDiedError(slot, reason);
    for (const request of [...this.inFlightRequests.values()]) {
      if (request.slot === slot) this.fail(request, error);
    }
  }

  replies(slot: number, batch: ArrayBuffer): void {
    const { counters } = this.context;
    const touched: Connection[] = [];
    readReplyBatch(batch, (key, flags, serviceUs, frame) => {
      if (flags & REPLY_WENT_ASYNC) {
        this.dispatcher.wentAsync(key);
        const method = this.inFlightRequests.get(key)?.head.method;
        if (method !== undefined) this.costs.observe(method, serviceUs);
        return;
      }
      const wasAsync = this.dispatcher.done(key);
      const request = this.inFlightRequests.get(key);
      if (!request) {
        // Already answered (deadline) or its connection is gone.
        counters.workerDone(slot, null);
        counters.dropped++;
        return;
      }
      this.inFlightRequests.delete(key);
      this.budget.add(-request.bytes);
      if (!wasAsync) this.costs.observe(request.head.method, serviceUs);
      const latencyUs = (performance.now() - request.receivedAt) * 1000;
      counters.workerDone(slot, latencyUs);
      // A oneway request owes no reply, even if the codec produced one.
      if ((flags & REPLY_NONE) === 0 && !request.head.oneway) {
        if (request.connection.isOpen) {
          request.connection.cork();
          touched.push(request.connection);
        }
        if (!request.connection.write(frame)) counters.dropped++;
      }
      // After the write: a half-closed connection ends once its last reply is queued.
      request.connection.requestFinished();
      counters.requestDone(request.head.method, replyOutcome(flags), latencyUs);
    });
    for (const connection of touched) connection.uncork();
  }

  codecError(slot: number, key: number, message: string): void {
    this.dispatcher.done(key);
    this.context.counters.workerDone(slot, null);
    const request = this.inFlightRequests.get(key);
    this.context.options.logger.error(`kmux: codec ${this.context.codec.name} threw in worker ${slot}: ${message}`);
    if (request) this.fail(request, new KmuxError('handler', 'internal error in the codec'));
  }

  kernelMessage(): void {
    // Workers send these only for connections a kernel transport attached.
  }

  kernelStats(): undefined {
    return undefined;
  }

  async drainAndClose(timeoutMs: number): Promise<void> {
    this.closing = true;
    const drainDeadline = Date.now() + timeoutMs;
    // Quiet connections only (QUIET_BEFORE_END_MS): one that just sent a request may have its next on the way.
    const busy = (): boolean => this.inFlightRequests.size > 0 || [...this.connections].some((c) => c.receivedWithin(QUIET_BEFORE_END_MS));
    while (busy() && Date.now() < drainDeadline) await sleep(10);
    // Still running at the deadline: their clients hear why rather than see the connection end.
    const cutOff = new KmuxError('shutting_down', `server shut down before the request finished (drain timeout ${timeoutMs} ms)`);
    for (const request of [...this.inFlightRequests.values()]) {
      this.fail(request, cutOff);
      this.context.counters.cutOffAtClose++;
    }
    for (const connection of this.connections) connection.end();
    const ended = Date.now() + 1000;
    while (this.connections.size > 0 && Date.now() < ended) await sleep(10);
    for (const connection of this.connections) {
      connection.destroy('shutdown', new KmuxError('shutting_down', 'server closed'));
    }
    this.deadlines.clear();
  }

  dispose(): void {
    this.deadlines.clear();
  }

  private onConnectionClosed(connection: Connection, cause: CloseCause | null): void {
    const { counters, options } = this.context;
    this.connections.delete(connection);
    counters.openConnections--;
    if (connection.aged) counters.agedConnections++;
    if (cause) {
      counters.connectionError(cause.reason);
      if (cause.reason !== 'idle_timeout' && cause.reason !== 'shutdown') {
        options.logger.warn(`kmux: connection ${connection.remoteAddress} closed: ${cause.error.message}`);
      }
    }
  }

  private onFrame(connection: Connection, body: Buffer): void {
    const { counters, codec, options } = this.context;
    counters.received++;
    let head: RequestHead;
    try {
      head = codec.peek(body);
    } catch (error) {
      // Not this protocol at all: nothing in the stream can be trusted after it.
      const cause = error instanceof Error ? error : new Error(String(error));
      connection.destroy('protocol', cause);
      return;
    }
    const receivedAt = performance.now();
    if (this.closing || connection.aged) return this.reject(connection, head, new KmuxError('shutting_down', NOT_RUN_SHUTTING_DOWN));
    // Past its limit a connection is refused, and past its refusal credit pushed back into TCP (push-back.ts).
    if (connection.inFlight >= options.maxInFlightPerConnection) {
      return this.refuse(connection, head, this.refusals.connection);
    }
    if (this.inFlightRequests.size >= options.maxInFlight && connection.inFlight >= this.fairShare()) {
      return this.refuse(connection, head, this.refusals.server);
    }
    if (this.budget.over) {
      this.budget.shed++;
      return this.reject(connection, head, this.refusals.memory);
    }
    const timeoutMs = timeoutFor(head, options);
    const request: InFlightRequest = {
      key: this.allocateKey(),
      deadline: Date.now() + timeoutMs,
      costUs: this.costs.estimateUs(head.method),
      flow: connection,
      slow: this.slowMethods.has(head.method),
      slot: -1,
      body,
      connection,
      head,
      receivedAt,
      bytes: body.length,
    };
    this.inFlightRequests.set(request.key, request);
    this.budget.add(request.bytes);
    connection.requestStarted();
    this.deadlines.add(request.key, timeoutMs, request.deadline);
    this.dispatcher.submit(request);
  }

  /** A connection's share of maxInFlight: one holding less is never refused for the server's limit. */
  private fairShare(): number {
    return Math.max(1, Math.floor(this.context.options.maxInFlight / this.connections.size));
  }

  private allocateKey(): number {
    // Keys are u32 on the wire to workers; wrap, skipping any still in flight.
    do {
      this.nextKey = this.nextKey >= 0xffffffff ? 1 : this.nextKey + 1;
    } while (this.inFlightRequests.has(this.nextKey) || this.dispatcher.holds(this.nextKey));
    return this.nextKey;
  }

  private expire(key: number): void {
    const request = this.inFlightRequests.get(key);
    if (!request) return;
    this.fail(request, new DeadlineExceededError(request.head.method, timeoutFor(request.head, this.context.options)));
  }

  /** Answers an in-flight request with an error; a late worker reply to it is dropped. */
  private fail(request: InFlightRequest, error: KmuxError): void {
    this.inFlightRequests.delete(request.key);
    this.budget.add(-request.bytes);
    this.writeError(request.connection, request.head, error);
    request.connection.requestFinished();
    this.context.counters.requestDone(request.head.method, error.kind, (performance.now() - request.receivedAt) * 1000);
  }

  /** Refuses a request past its connection's in-flight limit. */
  private refuse(connection: Connection, head: RequestHead, error: KmuxError): void {
    this.reject(connection, head, error);
    connection.refused();
  }

  /** Answers a request that never became in flight. */
  private reject(connection: Connection, head: RequestHead, error: KmuxError): void {
    this.writeError(connection, head, error);
    this.context.counters.requestDone(head.method, error.kind as Outcome, 0);
  }

  private writeError(connection: Connection, head: RequestHead, error: KmuxError): void {
    if (head.oneway) return;
    if (!connection.write(encodeFrame(this.context.codec.errorReply(head, error)))) this.context.counters.dropped++;
  }
}
