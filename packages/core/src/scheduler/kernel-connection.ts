/**
 * One connection as a worker serves it on a kernel transport: whole request frames come
 * from the worker's own fd (its KCM socket, or its sockmap target) on the worker's event
 * loop, and replies go out from here; nothing passes through the main thread. The worker
 * applies the limits itself: the per-connection and server in-flight bounds (counted in
 * shared memory across workers) and deadlines.
 */
import { MessageWatcher, type SysError } from '@kmux/native';
import type { RequestHead, WorkerCodec, WorkerResult } from '../codec/codec.js';
import { DeadlineExceededError, KmuxError, OverloadedError } from '../errors.js';
import { encodeFrame } from '../framing/frame-splitter.js';
import { timeoutFor } from '../server/timeouts.js';
import type { Outcome } from '../stats/server-stats.js';
import type { WorkerStatsRecorder } from '../stats/stats-delta.js';
import { ReplyWriter, kcmSink, tcpSink } from './reply-writer.js';
import { ConnectionCounters, ServerCounters } from './shared-counters.js';
import type { AttachMessage, DetachMessage } from './worker-messages.js';

/** A worker codec that can serve kernel transports. */
export type KernelCodec = WorkerCodec & Required<Pick<WorkerCodec, 'peek' | 'errorReply'>>;

export interface KernelConnectionHooks {
  /** The worker stopped serving the connection on its own; the main thread closes it. */
  failed(reason: string, message: string): void;
  /** The connection is detached: nothing of it is left in this worker. */
  detached(): void;
  /** The codec threw (a codec bug); the request got a generic error reply. */
  codecThrew(message: string): void;
}

interface Call {
  readonly head: RequestHead;
  readonly receivedAt: number;
  answered: boolean;
  timer: NodeJS.Timeout | null;
}

const LENGTH_PREFIX = 4;

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

export class KernelConnection {
  private readonly watcher: MessageWatcher;
  private readonly writer: ReplyWriter;
  private readonly counters: ConnectionCounters;
  private readonly server: ServerCounters;
  /** Requests taken on and not yet fully answered (reply on the socket, or dropped). */
  private readonly calls = new Set<Call>();
  private mode: 'serving' | DetachMessage['mode'] = 'serving';
  private graceTimer: NodeJS.Timeout | null = null;
  private done = false;
  private failed = false;

  constructor(
    private readonly attach: AttachMessage,
    private readonly codec: KernelCodec,
    private readonly stats: WorkerStatsRecorder,
    private readonly hooks: KernelConnectionHooks,
  ) {
    this.counters = new ConnectionCounters(attach.counters, attach.workers);
    this.server = new ServerCounters(attach.serverCounters);
    this.watcher = new MessageWatcher(attach.fd, {
      maxFrameBytes: attach.limits.maxFrameBytes,
      onMessages: (data, offsets) => this.onMessages(data, offsets),
      onClose: (error) => this.onReadEnd(error),
      onWritable: () => this.writer.pump(),
    });
    const onWriteError = (error: Error): void => this.fail('socket_error', `reply send failed: ${error.message}`);
    this.writer =
      attach.transport === 'kcm'
        ? new ReplyWriter(kcmSink(this.watcher), onWriteError)
        : new ReplyWriter(tcpSink(attach.replyFd, () => this.writer.pump()), onWriteError, this.counters.lock, 1 + attach.slot);
  }

  get inFlight(): number {
    return this.calls.size;
  }

  detach(mode: DetachMessage['mode'], graceMs: number): void {
    if (this.done) return;
    this.mode = mode;
    if (mode === 'abort') return this.finishDetach();
    // Reading goes on: under sockmap, frames the peer sent before closing may still be on their way.
    this.graceTimer ??= setTimeout(() => this.finishDetach(), graceMs);
    this.detachIfDrained();
  }

  private onMessages(data: Buffer, offsets: Uint32Array): void {
    this.counters.touch(this.attach.slot, Date.now());
    for (let i = 0; i + 1 < offsets.length && !this.watcher.closed; i++) {
      this.onRequest(data.subarray(offsets[i]! + LENGTH_PREFIX, offsets[i + 1]));
    }
  }

  private onRequest(body: Buffer): void {
    this.stats.frameReceived();
    let head: RequestHead;
    try {
      head = this.codec.peek(body);
    } catch (error) {
      // Not this protocol at all: nothing after it on the connection can be trusted.
      return this.fail('protocol', error instanceof Error ? error.message : String(error));
    }
    if (this.mode === 'shutdown') return this.reject(body, head, new KmuxError('shutting_down', 'server is shutting down'));
    const { maxInFlightPerConnection, maxInFlight } = this.attach.limits;
    if (this.counters.inFlight() >= maxInFlightPerConnection) {
      return this.reject(body, head, new OverloadedError('connection', maxInFlightPerConnection));
    }
    if (!this.server.tryAcquire(maxInFlight)) return this.reject(body, head, new OverloadedError('server', maxInFlight));
    this.counters.add(this.attach.slot, 1);
    this.stats.requestStarted();
    const call: Call = { head, receivedAt: performance.now(), answered: false, timer: null };
    this.calls.add(call);
    const timeoutMs = timeoutFor(head, this.attach.limits);
    let result: WorkerResult | Promise<WorkerResult>;
    try {
      result = this.codec.handle(body, { deadline: Date.now() + timeoutMs });
    } catch (error) {
      return this.codecThrew(call, body, error);
    }
    if (!isPromise(result)) return this.complete(call, result);
    call.timer = setTimeout(() => {
      call.timer = null;
      this.answer(call, this.codec.errorReply(body, new DeadlineExceededError(head.method, timeoutMs)), 'deadline_exceeded', false);
    }, timeoutMs);
    result.then(
      (done) => this.complete(call, done),
      (error: unknown) => this.codecThrew(call, body, error),
    );
  }

  private complete(call: Call, result: WorkerResult): void {
    if (call.answered) {
      this.stats.resultDropped();
      return;
    }
    this.answer(call, result.reply, result.failed ? 'failed' : 'ok', true);
  }

  /** A codec must turn errors into replies; a throw is a codec bug, reported as such. */
  private codecThrew(call: Call, body: Buffer, error: unknown): void {
    if (call.answered) return this.stats.resultDropped();
    this.hooks.codecThrew(String(error));
    this.answer(call, this.codec.errorReply(body, new KmuxError('handler', 'internal error in the codec')), 'handler', true);
  }

  private answer(call: Call, reply: Buffer | null, outcome: Outcome, ran: boolean): void {
    call.answered = true;
    if (call.timer) clearTimeout(call.timer);
    call.timer = null;
    this.stats.requestDone(call.head.method, outcome, (performance.now() - call.receivedAt) * 1000, ran);
    // A oneway request owes no reply, even if the codec produced one.
    if (reply && !call.head.oneway) this.send(reply, () => this.release(call));
    else this.release(call);
  }

  /** Answers a request that never became in flight. */
  private reject(body: Buffer, head: RequestHead, error: KmuxError): void {
    this.stats.requestDone(head.method, error.kind, 0, false);
    const reply = this.codec.errorReply(body, error);
    if (reply) this.send(reply, () => this.detachIfDrained());
  }

  private send(reply: Buffer, sent: () => void): void {
    if (this.done) return;
    this.writer.write(encodeFrame(reply), sent);
    if (this.writer.pendingBytes > this.attach.limits.maxPendingWriteBytes) {
      this.fail('write_backlog', `client reads no replies: over ${this.attach.limits.maxPendingWriteBytes} bytes queued`);
    }
  }

  /** The request's reply is on the socket (or will never be): it no longer counts against the limits. */
  private release(call: Call): void {
    if (!this.calls.delete(call)) return;
    this.counters.add(this.attach.slot, -1);
    this.server.release();
    this.detachIfDrained();
  }

  private onReadEnd(error: SysError | undefined): void {
    // KCM sockets never end on their own and sockmap targets stay connected: the main
    // thread learns of hangups from the TCP socket. Anything here is an error of ours.
    if (!this.done && this.mode === 'serving') this.fail('socket_error', `read failed: ${error?.message ?? 'end of stream'}`);
  }

  private fail(reason: string, message: string): void {
    if (this.done || this.failed) return;
    // Already being detached: the main thread is closing the connection anyway.
    if (this.mode !== 'serving') return this.finishDetach();
    this.failed = true;
    this.watcher.close();
    this.writer.close();
    this.hooks.failed(reason, message);
  }

  private detachIfDrained(): void {
    if (this.mode !== 'serving' && this.calls.size === 0 && this.writer.idle) this.finishDetach();
  }

  private finishDetach(): void {
    if (this.done) return;
    this.done = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.watcher.close();
    this.writer.close();
    for (const call of this.calls) {
      // Late results of these are dropped (and counted) by complete().
      if (!call.answered) this.stats.requestDone(call.head.method, 'connection_closed', (performance.now() - call.receivedAt) * 1000, false);
      call.answered = true;
      if (call.timer) clearTimeout(call.timer);
      this.release(call);
    }
    this.hooks.detached();
  }
}
