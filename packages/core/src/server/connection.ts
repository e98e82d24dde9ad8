import type { PlaintextSocket } from '../tls/server-tls.js';
import { FrameTimeoutError, KmuxError } from '../errors.js';
import type { UnframedMessages } from '../codec/codec.js';
import { FrameSplitter, LENGTH_PREFIX_BYTES, type StreamSplitter } from '../framing/frame-splitter.js';
import { UnframedSplitter } from '../framing/unframed-splitter.js';
import { KtlsError } from '../tls/errors.js';
import type { BufferBudget } from './buffer-budget.js';
import { AGED_LINGER_MS, AGED_REFUSALS_MAX_MS, QUIET_BEFORE_END_MS, connectionLifetimeMs } from './connection-age.js';
import { PushBack, REFUSALS_PER_SERVED } from './push-back.js';
import { ReplyBacklog } from './reply-backlog.js';

/** Why a connection closed other than cleanly: a stats key and the error behind it. */
export interface CloseCause {
  readonly reason: string;
  readonly error: Error;
}

export interface ConnectionHooks {
  onFrame(connection: Connection, body: Buffer): void;
  onClose(connection: Connection, cause: CloseCause | null): void;
}

export interface ConnectionLimits {
  readonly maxFrameBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxPendingWriteBytes: number;
  readonly frameTimeoutMs: number;
  readonly maxConnectionAgeMs: number | false;
  readonly maxInFlightPerConnection: number;
}

function isPeerReset(error: Error): boolean {
  return (error as NodeJS.ErrnoException).code === 'ECONNRESET';
}

/** Why reading is paused; reading resumes when no reason is left. */
const PAUSED_BACKLOG = 1; // the client does not read its replies
const PAUSED_BUDGET = 2; // the server-wide maxBufferedBytes is spent
const PAUSED_REFUSED = 4; // refused past its refusal credit: pushed back into TCP (push-back.ts)

/**
 * One client connection on the user-space transport: splits frames off the socket and
 * writes whole reply frames back. Each reply is one write, and Node's writes go out in
 * order, so replies never interleave. A client that stops reading its replies makes the
 * connection stop reading its requests, which bounds what it can make us buffer. A client
 * that half-closes still gets the replies to what it sent. A frame must complete within
 * frameTimeoutMs of its first byte (the idle timer restarts on every byte, so alone it
 * would let a trickling client hold a partial frame forever). The bytes it holds (partial
 * frame, unsent replies) are charged to the server-wide budget. When the codec reads
 * unframed messages and the first byte starts one, the connection is unframed: messages
 * are split by their structure and replies go out without their length prefix. Past its
 * maximum age it ends gracefully: the transport refuses its new requests unrun, the requests
 * taken before are answered, and once it has been quiet for QUIET_BEFORE_END_MS it sends its
 * FIN and waits for the peer's.
 *
 * Refused too often past its in-flight limit, it is pushed back into TCP (PushBack): not read
 * until half of its requests in flight have finished; the frames it holds meanwhile are
 * charged to the budget.
 *
 * Replies reach the socket one write per reply batch, copied out of the batch, while the
 * socket keeps up; while it holds unsent bytes, later replies wait in a ReplyBacklog and
 * follow once it has sent them, so a reply that waits never keeps its batch alive.
 */
export class Connection {
  private inFlightCount = 0;
  /** Chosen by the first byte received: framed, or unframed (then replies go out without their prefix). */
  private splitter: StreamSplitter | null = null;
  private unframedReplies = false;
  /** Kept from the start: a destroyed socket no longer knows its peer, and closes are logged after that. */
  readonly remoteAddress: string;
  private closed = false;
  private peerEnded = false;
  private idleWhileBusy = false;
  private corked = false;
  /** Replies of the reply batch being read (cork() to uncork()); views into that batch. */
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private readonly backlog = new ReplyBacklog();
  /** The socket ends once the backlog is handed to it. */
  private endPending = false;
  private cause: CloseCause | null = null;
  private pausedFor = 0;
  /** performance.now() when the partial frame now held began; -1 when none is held. */
  private frameStartedAt = -1;
  private frameTimer: NodeJS.Timeout | null = null;
  private ageTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private quietTimer: NodeJS.Timeout | null = null;
  /** performance.now() when it reached its maximum age; -1 before. */
  private agedAt = -1;
  /** performance.now() when it last completed a frame. */
  private lastFrameAt = -Infinity;
  private readonly pushBack: PushBack;
  /** Bytes charged to the budget for the partial frame, held frames, and unsent replies. */
  private chargedPartial = 0;
  private chargedWrites = 0;

  constructor(
    readonly id: number,
    private readonly socket: PlaintextSocket,
    private readonly limits: ConnectionLimits,
    private readonly budget: BufferBudget,
    private readonly hooks: ConnectionHooks,
    private readonly unframed?: UnframedMessages,
  ) {
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.pushBack = new PushBack(REFUSALS_PER_SERVED * limits.maxInFlightPerConnection);
    socket.setNoDelay(true);
    socket.setTimeout(limits.idleTimeoutMs);
    socket.on('data', this.onData);
    if (limits.maxConnectionAgeMs) this.ageTimer = setTimeout(this.onAged, connectionLifetimeMs(limits.maxConnectionAgeMs)).unref();
    socket.on('end', () => {
      this.peerEnded = true;
      if (this.inFlightCount === 0) this.finish();
    });
    socket.on('timeout', () => {
      if (this.inFlightCount === 0) this.destroy('idle_timeout', new KmuxError('connection_closed', 'idle timeout'));
      // Busy now: re-arm once the last request finishes, or the timeout is lost for good.
      else this.idleWhileBusy = true;
    });
    socket.on('error', (error) => {
      // A reset with every request answered and no frame begun is the peer's way to close
      // (HAProxy's health checks, clients with SO_LINGER 0): nothing was lost, it is no error.
      if (isPeerReset(error) && this.inFlightCount === 0 && (this.splitter?.bufferedBytes ?? 0) === 0) return;
      // A kTLS socket says why (tls_bad_record, tls_peer_alert, tls_key_update, ...).
      this.cause ??= { reason: error instanceof KtlsError ? `tls_${error.reason}` : 'socket_error', error };
    });
    socket.on('close', () => {
      this.closed = true;
      for (const timer of [this.frameTimer, this.ageTimer, this.lingerTimer, this.quietTimer]) if (timer) clearTimeout(timer);
      this.budget.cancel(this.onBudgetFreed);
      this.budget.add(-(this.chargedPartial + this.chargedWrites));
      this.chargedPartial = this.chargedWrites = 0;
      this.backlog.clear();
      this.gathered = [];
      this.pushBack.clear();
      hooks.onClose(this, this.cause);
    });
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Whether it completed a frame in the last `ms`. */
  receivedWithin(ms: number): boolean {
    return performance.now() - this.lastFrameAt < ms;
  }

  /** It reached its maximum age and ends (or ended) gracefully. */
  get aged(): boolean {
    return this.agedAt >= 0;
  }

  requestStarted(): void {
    this.inFlightCount++;
  }

  requestFinished(): void {
    this.inFlightCount--;
    if (this.pushBack.finished(this.inFlightCount)) this.resumeFromPushBack();
    if (this.inFlightCount > 0) return;
    if (this.aged) this.endAgedWhenQuiet();
    else if (this.peerEnded) this.finish();
    else if (this.idleWhileBusy) {
      this.idleWhileBusy = false;
      this.socket.setTimeout(this.limits.idleTimeoutMs);
    }
  }

  /**
   * A request of this connection was just refused past its in-flight limit (its own, or its
   * share of the server's); past its refusal credit, it is pushed back.
   */
  refused(): void {
    if (!this.closed && this.pushBack.refused(this.inFlightCount)) this.pauseFor(PAUSED_REFUSED);
  }

  /** Writes one whole length-prefixed frame (its body alone on an unframed connection). Returns false if the connection is gone. */
  write(frame: Buffer): boolean {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return false;
    const bytes = this.unframedReplies ? frame.subarray(LENGTH_PREFIX_BYTES) : frame;
    if (this.corked) {
      this.gathered.push(bytes);
      this.gatheredBytes += bytes.length;
    } else {
      this.send([bytes], bytes.length);
    }
    return true;
  }

  /** Gathers the writes of one reply batch into one, until uncork(). */
  cork(): void {
    if (this.corked || this.closed) return;
    this.corked = true;
  }

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    const frames = this.gathered;
    const bytes = this.gatheredBytes;
    this.gathered = [];
    this.gatheredBytes = 0;
    if (frames.length > 0 && !this.closed && this.socket.writable) this.send(frames, bytes);
  }

  /** Closes after pending replies are written. */
  end(): void {
    if (!this.closed) this.finish();
  }

  /** Closes at once, for an error that makes the stream unusable; `reason` is the stats key. */
  destroy(reason: string, error: Error): void {
    // The first reason wins: a later error in the same read must not relabel the close.
    if (this.closed || this.socket.destroyed) return;
    this.cause = { reason, error };
    this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    let completed = false;
    const splitter = (this.splitter ??= this.splitterFor(chunk[0]!));
    // Error replies written while the chunk is split (overloaded, shutting down) leave in
    // one write, not one syscall each: a flood past its limit must not stall the main thread.
    const corking = !this.corked;
    if (corking) this.cork();
    try {
      // Frames after one that closed the connection must not run.
      splitter.push(chunk, (body) => {
        completed = true;
        if (this.socket.destroyed) return;
        if (this.pushBack.active) this.pushBack.hold(body);
        else this.hooks.onFrame(this, body);
      });
    } catch (error) {
      if (!(error instanceof KmuxError)) throw error;
      this.destroy(error.kind, error);
      return;
    } finally {
      if (corking) this.uncork();
    }
    if (this.closed) return;
    if (completed) this.lastFrameAt = performance.now();
    if (completed && this.aged) this.endAgedWhenQuiet();
    this.chargePartial();
    const partial = splitter.bufferedBytes;
    if (partial === 0) this.frameStartedAt = -1;
    else if (completed || this.frameStartedAt < 0) this.startFrameClock();
    // Over budget: stop reading whoever holds bytes; the others' requests are shed instead.
    if (this.budget.over && (this.chargedPartial > 0 || this.chargedWrites > 0) && !this.socket.destroyed) {
      this.pauseFor(PAUSED_BUDGET);
      this.budget.wait(this.onBudgetFreed);
    }
  };

  /** Charges the budget with the partial frame and the held frames. */
  private chargePartial(): void {
    const partial = (this.splitter?.bufferedBytes ?? 0) + this.pushBack.heldBytes;
    this.budget.add(partial - this.chargedPartial);
    this.chargedPartial = partial;
  }

  /** Enough of its requests finished: the held frames go to the transport, in order, then reading resumes (unless one pushed it back again). */
  private resumeFromPushBack(): void {
    this.pausedFor &= ~PAUSED_REFUSED;
    const corking = !this.corked;
    if (corking) this.cork();
    try {
      this.pushBack.release(
        (body) => this.hooks.onFrame(this, body),
        () => !this.socket.destroyed,
      );
    } finally {
      if (corking) this.uncork();
    }
    if (this.closed) return;
    this.chargePartial();
    if (this.pushBack.active) return;
    // The partial frame waited on the server, not the client: its clock starts again.
    if (this.frameStartedAt >= 0) this.frameStartedAt = performance.now();
    if (this.pausedFor === 0 && !this.socket.destroyed) this.socket.resume();
  }

  private splitterFor(firstByte: number): StreamSplitter {
    if (!this.unframed?.startsMessage(firstByte)) return new FrameSplitter(this.limits.maxFrameBytes);
    this.unframedReplies = true;
    return new UnframedSplitter(this.unframed, this.limits.maxFrameBytes);
  }

  /** A new partial frame began in this chunk. One timer per connection, re-armed lazily rather than per chunk. */
  private startFrameClock(): void {
    this.frameStartedAt = performance.now();
    this.frameTimer ??= setTimeout(this.onFrameTimer, this.limits.frameTimeoutMs).unref();
  }

  private readonly onFrameTimer = (): void => {
    this.frameTimer = null;
    if (this.frameStartedAt < 0 || this.closed) return;
    // Pushed back, the server is the one not reading: the clock restarts when it resumes.
    const left = this.pushBack.active ? this.limits.frameTimeoutMs : this.frameStartedAt + this.limits.frameTimeoutMs - performance.now();
    if (left > 0) {
      this.frameTimer = setTimeout(this.onFrameTimer, left).unref();
      return;
    }
    // Counted even while the server itself paused reading: the budget must be able to reclaim it.
    this.destroy('frame_timeout', new FrameTimeoutError(this.limits.frameTimeoutMs, this.splitter?.bufferedBytes ?? 0));
  };

  private readonly onAged = (): void => {
    this.ageTimer = null;
    if (this.closed) return;
    this.agedAt = performance.now();
    this.socket.setTimeout(0);
    this.endAgedWhenQuiet();
  };

  /**
   * Sends the FIN once nothing is in flight and the peer has been quiet for QUIET_BEFORE_END_MS
   * (or has been refused for AGED_REFUSALS_MAX_MS); then the peer has AGED_LINGER_MS to close.
   */
  private endAgedWhenQuiet(): void {
    if (this.lingerTimer || this.closed || this.inFlightCount > 0) return;
    const now = performance.now();
    const endAt = Math.min(this.lastFrameAt + QUIET_BEFORE_END_MS, this.agedAt + AGED_REFUSALS_MAX_MS);
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
    if (now < endAt) {
      this.quietTimer = setTimeout(() => this.endAgedWhenQuiet(), endAt - now).unref();
      return;
    }
    // What the peer still sends is discarded unread (the connection is done), but it is read:
    // closing with unread bytes would reset the connection, and could drop the last replies.
    this.socket.removeListener('data', this.onData);
    this.socket.on('data', () => {});
    this.pushBack.clear();
    this.budget.add(-this.chargedPartial);
    this.chargedPartial = 0;
    this.frameStartedAt = -1;
    this.budget.cancel(this.onBudgetFreed);
    this.pausedFor = 0;
    this.socket.resume();
    this.finish();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), AGED_LINGER_MS).unref();
  }

  private send(frames: Buffer[], bytes: number): void {
    if (this.socket.writableLength > 0 || !this.backlog.empty) {
      for (const frame of frames) this.backlog.append(frame);
    } else {
      this.socket.write(frames.length === 1 ? ownBytes(frames[0]!) : Buffer.concat(frames, bytes), this.afterWrite);
    }
    // Resumed once all of it is sent: afterWrite is sure to run, as the socket holds bytes.
    if (this.socket.writableLength + this.backlog.bytes > this.limits.maxPendingWriteBytes) this.pauseFor(PAUSED_BACKLOG);
    this.chargeWrites();
  }

  /** Ends the socket after what it holds and the backlog. */
  private finish(): void {
    this.uncork();
    if (this.backlog.empty) this.socket.end();
    else this.endPending = true;
  }

  private readonly afterWrite = (): void => {
    if (this.closed) return;
    if (this.socket.writableLength === 0) {
      if (this.backlog.empty) this.resumeFrom(PAUSED_BACKLOG);
      for (const chunk of this.backlog.take()) this.socket.write(chunk, this.afterWrite);
      if (this.endPending) {
        this.endPending = false;
        this.socket.end();
      }
    }
    this.chargeWrites();
  };

  /** Charges the budget with the reply bytes held: what the socket has yet to send, and the backlog. */
  private chargeWrites(): void {
    if (this.closed) return; // released on close
    const pending = this.socket.writableLength + this.backlog.bytes;
    this.budget.add(pending - this.chargedWrites);
    this.chargedWrites = pending;
  }

  private readonly onBudgetFreed = (): void => this.resumeFrom(PAUSED_BUDGET);

  private pauseFor(reason: number): void {
    if (this.pausedFor === 0) this.socket.pause();
    this.pausedFor |= reason;
  }

  private resumeFrom(reason: number): void {
    if ((this.pausedFor & reason) === 0) return;
    this.pausedFor &= ~reason;
    if (this.pausedFor === 0 && !this.closed) this.socket.resume();
  }
}

/** Buffers this small go as they are: a socket holds at most one write that did not wait in the backlog. */
const SMALL_BUFFER = 8 * 1024;

/**
 * A frame that is most of its buffer, or in a small one (a pool slab, a small batch), goes as
 * it is; a view into a larger buffer is copied, so that a socket holding it holds no more.
 */
function ownBytes(frame: Buffer): Buffer {
  const held = frame.buffer.byteLength;
  return held <= SMALL_BUFFER || frame.length * 4 >= held * 3 ? frame : Buffer.from(frame);
}
