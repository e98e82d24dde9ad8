/**
 * One connection as a worker serves it on a kernel transport: whole request frames come
 * from the worker's own fd (its KCM socket, or its sockmap target) on the worker's event
 * loop, and replies go out from here; nothing passes through the main thread. The worker
 * applies the limits itself: the per-connection and server in-flight bounds (counted in
 * shared memory across workers), deadlines, and the worker's own bound (kernel-budget.ts).
 */
import { MessageWatcher, NO_REPLY, isSysError, type PollGroup, type SysError } from '@kmux/native';
import type { RequestHead, WorkerCodec, WorkerResult } from '../codec/codec.js';
import { DeadlineExceededError, KmuxError, NOT_RUN_SHUTTING_DOWN, OverloadedError } from '../errors.js';
import { encodeFrame } from '../framing/frame-splitter.js';
import { timeoutFor } from '../server/timeouts.js';
import { resultOutcome, type Outcome } from '../stats/outcome.js';
import type { WorkerStatsRecorder } from '../stats/worker-recorder.js';
import type { BudgetClient, WorkerBudget } from './kernel-budget.js';
import { ReplyWriter, kcmSink, tcpSink } from './reply-writer.js';
import { ConnectionCounters } from './shared-counters.js';
import { PARSER_ERROR_REASONS, type AttachMessage, type DetachMessage, type FrameExpectation } from './worker-messages.js';

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
  /** Its place in the order this worker read the connection's frames (native's answer records name it). */
  readonly index: number;
  readonly receivedAt: number;
  readonly timeoutMs: number;
  readonly deadline: number;
  /** Only while held: a copy, so that a held request does not pin the whole batch it came in. */
  body: Buffer | null;
  /** Running (counted by the worker's budget), not held. */
  started: boolean;
  answered: boolean;
  timer: NodeJS.Timeout | null;
}

const LENGTH_PREFIX = 4;

/**
 * A worker's answer to request `index` on a native transport pair (native/io_loop.h):
 * [u32 length][u32 index][reply], or length NO_REPLY and no body when no reply is owed.
 * The reply is sent as its own part, not copied behind the header: each copy of a large
 * reply is a fresh ArrayBuffer, and V8 counts those bytes toward its next full GC.
 */
function encodeAnswer(index: number, reply: Buffer | null): Buffer[] {
  const header = Buffer.allocUnsafe(8);
  header.writeUInt32BE(reply ? reply.length : NO_REPLY, 0);
  header.writeUInt32BE(index, 4);
  return reply ? [header, reply] : [header];
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

export class KernelConnection implements BudgetClient {
  private readonly watcher: MessageWatcher;
  private readonly writer: ReplyWriter;
  private readonly counters: ConnectionCounters;
  /** Requests taken on and not yet fully answered (reply on the socket, or dropped). */
  private readonly calls = new Set<Call>();
  /** Admitted while the worker was at its depth or out of time this turn; they start as the budget lets them. */
  private held: Call[] = [];
  private mode: 'serving' | DetachMessage['mode'] = 'serving';
  private graceTimer: NodeJS.Timeout | null = null;
  /** Frames read from this worker's fd (mod 2^32, as the kernel counts). */
  private received = 0;
  /** At a counted finish: the frames to read before detaching (DetachMessage.expect). */
  private expect: FrameExpectation | null = null;
  /** A wait for the other workers' reads (KCM) is pending. */
  private waitingForFrames = false;
  private done = false;
  private failed = false;
  /** native, while a batch of requests is read: the replies made meanwhile, sent in one write after it. */
  private batch: { parts: Buffer[]; sent: (() => void)[] } | null = null;

  constructor(
    private readonly attach: AttachMessage,
    private readonly codec: KernelCodec,
    private readonly stats: WorkerStatsRecorder,
    private readonly budget: WorkerBudget,
    group: PollGroup,
    private readonly hooks: KernelConnectionHooks,
  ) {
    this.counters = new ConnectionCounters(attach.counters, attach.workers, budget.server);
    this.watcher = new MessageWatcher(attach.fd, {
      maxFrameBytes: attach.limits.maxFrameBytes,
      // One wakeup takes no more from a KCM socket than the worker may run.
      batchMessages: attach.limits.workerQueueDepth,
      onMessages: (data, offsets) => this.onMessages(data, offsets),
      onClose: (error) => this.onReadEnd(error),
      onWritable: () => this.writer.pump(),
      // Reads when the worker's budget lets all its connections read.
      group,
    });
    const onWriteError = (error: Error): void => {
      const reason = (isSysError(error) && PARSER_ERROR_REASONS[error.code]) || 'socket_error';
      this.fail(reason, `reply send failed: ${error.message}`);
    };
    // KCM: the worker's own socket, each message whole; native: its own end of the I/O thread's pair.
    this.writer =
      attach.transport !== 'sockmap'
        ? new ReplyWriter(kcmSink(this.watcher), onWriteError)
        : new ReplyWriter(tcpSink(attach.replyFd, () => this.writer.pump()), onWriteError, this.counters.lock, 1 + attach.slot);
  }

  get hasHeld(): boolean {
    return this.held.length > 0;
  }

  startHeld(): boolean {
    if (this.done || this.failed) return false;
    for (let call = this.held.shift(); call; call = this.held.shift()) {
      if (call.answered) continue;
      const body = call.body!;
      call.body = null;
      this.run(call, body);
      return true;
    }
    return false;
  }

  detach(mode: DetachMessage['mode'], graceMs: number, expect?: FrameExpectation): void {
    if (this.done) return;
    if (mode === 'finish' && expect) this.expect = expect;
    if (mode === 'finish' && this.serving) {
      // The peer sends no more, but what it sent just before its FIN may not have woken the
      // watcher yet: read it now (while still serving, so that nothing detaches half way),
      // whatever the budget says (resume() takes the watcher out of the worker's group for good);
      // the budget holds what it cannot run.
      this.watcher.resume();
      this.watcher.flush();
    }
    if (mode === 'age') {
      // Refuse from now on; the main thread sends the detach once the connection is quiet.
      if (this.mode === 'serving') this.mode = 'age';
      return;
    }
    this.mode = mode;
    if (mode === 'abort') return this.finishDetach();
    // Reading goes on: frames the peer sent before closing may still be on their way (the kernel
    // delivers them asynchronously); with `expect`, until the last of them has been read.
    this.graceTimer ??= setTimeout(() => this.finishDetach(), graceMs);
    this.detachIfDrained();
  }

  private onMessages(data: Buffer, offsets: Uint32Array): void {
    this.counters.touch(this.attach.slot, Date.now());
    // A stream pair (native) takes many replies in one send; KCM needs one send per message.
    if (this.attach.transport === 'native') this.batch = { parts: [], sent: [] };
    let frames = 0;
    for (let i = 0; i + 1 < offsets.length && !this.watcher.closed; i++) {
      // Counted as each is taken on, not per batch: a count that ran ahead of the requests
      // taken on would let a finishing connection detach with the rest of the batch unread.
      const index = this.received;
      this.received = (this.received + 1) >>> 0;
      frames++;
      this.onRequest(data.subarray(offsets[i]! + LENGTH_PREFIX, offsets[i + 1]), index);
    }
    this.counters.addReceived(frames);
    this.sendBatch();
    // Finishing: these may have been the last frames it waited for.
    if (!this.done) this.detachIfDrained();
  }

  private onRequest(body: Buffer, index: number): void {
    this.stats.frameReceived();
    let head: RequestHead;
    try {
      head = this.codec.peek(body);
    } catch (error) {
      // Not this protocol at all: nothing after it on the connection can be trusted.
      return this.fail('protocol', error instanceof Error ? error.message : String(error));
    }
    if (this.mode === 'shutdown' || this.mode === 'age') return this.reject(body, head, index, new KmuxError('shutting_down', NOT_RUN_SHUTTING_DOWN));
    const { maxInFlightPerConnection, maxInFlight } = this.attach.limits;
    if (this.counters.inFlight() >= maxInFlightPerConnection) {
      return this.reject(body, head, index, new OverloadedError('connection', maxInFlightPerConnection));
    }
    if (!this.budget.admit(this.counters.inFlightOf(this.attach.slot))) return this.reject(body, head, index, new OverloadedError('server', maxInFlight));
    this.counters.add(this.attach.slot, 1);
    this.stats.requestStarted();
    const timeoutMs = timeoutFor(head, this.attach.limits);
    const call: Call = {
      head,
      index,
      receivedAt: performance.now(),
      timeoutMs,
      deadline: Date.now() + timeoutMs,
      body: null,
      started: false,
      answered: false,
      timer: null,
    };
    this.calls.add(call);
    if (this.budget.take()) return this.run(call, body);
    call.body = Buffer.from(body);
    this.armDeadline(call, call.body);
    this.held.push(call);
    this.budget.hold(this);
  }

  private run(call: Call, body: Buffer): void {
    call.started = true;
    let result: WorkerResult | Promise<WorkerResult>;
    try {
      result = this.codec.handle(body, { deadline: call.deadline });
    } catch (error) {
      return this.codecThrew(call, body, error);
    }
    if (!isPromise(result)) return this.complete(call, result);
    if (!call.timer) this.armDeadline(call, body);
    result.then(
      (done) => this.complete(call, done),
      (error: unknown) => this.codecThrew(call, body, error),
    );
  }

  private armDeadline(call: Call, body: Buffer): void {
    call.timer = setTimeout(() => {
      call.timer = null;
      const error = new DeadlineExceededError(call.head.method, call.timeoutMs);
      this.answer(call, this.codec.errorReply(body, error), 'deadline_exceeded', !call.started);
    }, Math.max(0, call.deadline - Date.now()));
  }

  private complete(call: Call, result: WorkerResult): void {
    if (call.answered) {
      this.stats.resultDropped();
      return;
    }
    this.answer(call, result.reply, resultOutcome(result), true);
  }

  /** A codec must turn errors into replies; a throw is a codec bug, reported as such. */
  private codecThrew(call: Call, body: Buffer, error: unknown): void {
    if (call.answered) return this.stats.resultDropped();
    this.hooks.codecThrew(String(error));
    this.answer(call, this.codec.errorReply(body, new KmuxError('handler', 'internal error in the codec')), 'handler', true);
  }

  /** `completed`: the worker is done with the call (its result is in, or it never started: it never will). */
  private answer(call: Call, reply: Buffer | null, outcome: Outcome, completed: boolean): void {
    this.settle(call);
    this.stats.requestDone(call.head.method, outcome, (performance.now() - call.receivedAt) * 1000, completed);
    // A oneway request owes no reply, even if the codec produced one.
    const frame = this.frame(call.index, reply && !call.head.oneway ? reply : null);
    if (frame) this.send(frame, () => this.release(call));
    else this.release(call);
  }

  /** The call has its answer: no deadline any more, and a running one frees its place among the running. */
  private settle(call: Call): void {
    call.answered = true;
    if (call.timer) clearTimeout(call.timer);
    call.timer = null;
    if (call.started) this.budget.answered();
  }

  /** Answers a request that never became in flight. */
  private reject(body: Buffer, head: RequestHead, index: number, error: KmuxError): void {
    this.stats.requestDone(head.method, error.kind, 0, false);
    const frame = this.frame(index, this.codec.errorReply(body, error));
    if (frame) this.send(frame, this.afterReject);
  }

  /** One function for every refusal: the writer runs it once for a run of refusals sent together. */
  private readonly afterReject = (): void => this.detachIfDrained();

  /**
   * What goes out for request `index`, in parts: its reply frame, or nothing when none is owed.
   * native: always an answer record, so that the I/O thread knows the request is done (encodeAnswer).
   */
  private frame(index: number, reply: Buffer | null): Buffer[] | null {
    if (this.attach.transport === 'native') return encodeAnswer(index, reply);
    return reply && [encodeFrame(reply)];
  }

  private send(parts: Buffer[], sent: () => void): void {
    if (this.done) return;
    if (this.batch) {
      this.batch.parts.push(...parts);
      this.batch.sent.push(sent);
      return;
    }
    this.writer.write(parts, sent);
    // native: the I/O thread reads every answer at once and applies this bound to the client itself.
    if (this.attach.transport !== 'native' && this.writer.pendingBytes > this.attach.limits.maxPendingWriteBytes) {
      this.fail('write_backlog', `client reads no replies: over ${this.attach.limits.maxPendingWriteBytes} bytes queued`);
    }
  }

  private sendBatch(): void {
    const { batch } = this;
    this.batch = null;
    if (!batch || batch.parts.length === 0) return;
    this.send(batch.parts, () => {
      for (const sent of batch.sent) sent();
    });
  }

  /** The request's reply is on the socket (or will never be): it no longer counts against the limits. */
  private release(call: Call): void {
    if (!this.calls.delete(call)) return;
    // A reply going out is activity, as in user space (Node's socket timer counts writes): a
    // client waiting on a slow batch must not be dropped as idle in the gap before its next request.
    this.counters.touch(this.attach.slot, Date.now());
    this.counters.add(this.attach.slot, -1);
    this.budget.finished();
    this.detachIfDrained();
  }

  private onReadEnd(error: SysError | undefined): void {
    // KCM sockets never end on their own and sockmap targets stay connected: the main
    // thread learns of hangups from the TCP socket. Anything here is an error of ours.
    if (!this.done && this.serving) this.fail('socket_error', `read failed: ${error?.message ?? 'end of stream'}`);
  }

  private fail(reason: string, message: string): void {
    if (this.done || this.failed) return;
    if (!this.serving) {
      // Already being detached: the main thread closes the connection anyway. A verdict on what
      // the peer sent is still reported, so that the close is counted under it (a client that
      // sends a bad frame and its FIN at once).
      if (reason === 'protocol') this.hooks.failed(reason, message);
      return this.finishDetach();
    }
    this.failed = true;
    this.watcher.close();
    this.writer.close();
    this.dropHeld();
    this.hooks.failed(reason, message);
  }

  /** Held requests never start now; they stay in `calls` until finishDetach releases them. */
  private dropHeld(): void {
    this.held = [];
    this.budget.forget(this);
  }

  private detachIfDrained(): void {
    if (!this.serving && this.calls.size === 0 && this.writer.idle && !this.framesDue()) this.finishDetach();
  }

  /** Still attached for good: serving, or refusing new requests at a maximum age (the main thread ends it). */
  private get serving(): boolean {
    return this.mode === 'serving' || this.mode === 'age';
  }

  /**
   * Whether frames the kernel counted have not been read yet. For KCM they may come to any
   * worker's socket: this one waits for the shared count to move (another worker's read may
   * complete it) and checks again.
   */
  private framesDue(): boolean {
    const { expect } = this;
    if (!expect) return false;
    if (expect.scope === 'slot') return ((this.received - expect.frames) | 0) < 0;
    const seen = this.counters.received();
    if (((seen - expect.frames) | 0) >= 0) return false;
    if (!this.waitingForFrames) {
      this.waitingForFrames = true;
      void this.counters.waitReceived(seen).then(() => {
        this.waitingForFrames = false;
        if (!this.done) this.detachIfDrained();
      });
    }
    return true;
  }

  private finishDetach(): void {
    if (this.done) return;
    this.done = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (this.waitingForFrames) this.counters.wakeReceived();
    this.watcher.close();
    this.writer.close();
    this.dropHeld();
    for (const call of this.calls) {
      // Late results of these are dropped (and counted) by complete().
      if (!call.answered) {
        this.stats.requestDone(call.head.method, 'connection_closed', (performance.now() - call.receivedAt) * 1000, !call.started);
        this.settle(call);
      }
      this.release(call);
    }
    this.hooks.detached();
  }
}
