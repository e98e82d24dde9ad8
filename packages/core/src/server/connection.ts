import type { Socket } from 'node:net';
import { KmuxError } from '../errors.js';
import { FrameSplitter } from '../framing/frame-splitter.js';

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
}

/**
 * One client connection on the user-space transport: splits frames off the socket and
 * writes whole reply frames back. Each reply is one write, and Node's writes go out in
 * order, so replies never interleave. A client that stops reading its replies makes the
 * connection stop reading its requests, which bounds what it can make us buffer. A client
 * that half-closes still gets the replies to what it sent.
 */
export class Connection {
  private inFlightCount = 0;
  private readonly splitter: FrameSplitter;
  private closed = false;
  private peerEnded = false;
  private idleWhileBusy = false;
  private corked = false;
  private cause: CloseCause | null = null;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly limits: ConnectionLimits,
    private readonly hooks: ConnectionHooks,
  ) {
    this.splitter = new FrameSplitter(limits.maxFrameBytes);
    socket.setNoDelay(true);
    socket.setTimeout(limits.idleTimeoutMs);
    socket.on('data', this.onData);
    socket.on('drain', () => socket.resume());
    socket.on('end', () => {
      this.peerEnded = true;
      if (this.inFlightCount === 0) socket.end();
    });
    socket.on('timeout', () => {
      if (this.inFlightCount === 0) this.destroy('idle_timeout', new KmuxError('connection_closed', 'idle timeout'));
      // Busy now: re-arm once the last request finishes, or the timeout is lost for good.
      else this.idleWhileBusy = true;
    });
    socket.on('error', (error) => {
      this.cause ??= { reason: 'socket_error', error };
    });
    socket.on('close', () => {
      this.closed = true;
      hooks.onClose(this, this.cause);
    });
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  requestStarted(): void {
    this.inFlightCount++;
  }

  requestFinished(): void {
    this.inFlightCount--;
    if (this.inFlightCount > 0) return;
    if (this.peerEnded) this.socket.end();
    else if (this.idleWhileBusy) {
      this.idleWhileBusy = false;
      this.socket.setTimeout(this.limits.idleTimeoutMs);
    }
  }

  /** Writes one whole frame. Returns false if the connection is gone. */
  write(frame: Buffer): boolean {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return false;
    // Pause only when write() said so: then 'drain' is sure to come and resume reading.
    const flushed = this.socket.write(frame);
    if (!flushed && this.socket.writableLength > this.limits.maxPendingWriteBytes) this.socket.pause();
    return true;
  }

  /** Groups the writes of one reply batch into as few syscalls as possible. */
  cork(): void {
    if (this.corked || this.closed) return;
    this.corked = true;
    this.socket.cork();
  }

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  /** Closes after pending replies are written. */
  end(): void {
    if (!this.closed) this.socket.end();
  }

  /** Closes at once, for an error that makes the stream unusable; `reason` is the stats key. */
  destroy(reason: string, error: Error): void {
    // The first reason wins: a later error in the same read must not relabel the close.
    if (this.closed || this.socket.destroyed) return;
    this.cause = { reason, error };
    this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      // Frames after one that closed the connection must not run.
      this.splitter.push(chunk, (body) => {
        if (!this.socket.destroyed) this.hooks.onFrame(this, body);
      });
    } catch (error) {
      if (!(error instanceof KmuxError)) throw error;
      this.destroy(error.kind, error);
    }
  };
}
