/**
 * Writes whole reply frames on a kernel transport from a worker thread, without blocking:
 * when the socket takes only part of a frame, the rest waits for it to become writable,
 * and later frames queue behind it, so one writer's frames never interleave. What waits is
 * copied into chunks (server/reply-backlog.ts), so a client that does not read holds about
 * `pendingBytes`, the bytes maxPendingWriteBytes is checked against, and no object per frame.
 *
 * - KCM: the worker's own KCM socket. Each KCM socket is written by one worker only and
 *   the kernel sends each message whole on the TCP connection, so no lock is needed.
 * - sockmap: every worker writes the connection's TCP socket itself. A frame that goes
 *   out in several sends would interleave with another worker's, so a worker holds the
 *   connection's shared write lock from a send's first byte to the end of a frame.
 */
import { POLL_WRITABLE, nativeKtls, type MessageWatcher, type NativeFdPoll } from '@kmux/native';
import { ReplyBacklog } from '../server/reply-backlog.js';

/**
 * A non-blocking byte sink: send() takes one frame's parts, gathered into one send, and returns
 * the bytes taken (0 when full) or throws when the socket is dead.
 */
export interface ReplySink {
  send(parts: readonly Uint8Array[]): number;
  /** Calls the writer's pump once the socket can take data again. */
  waitWritable(): void;
  close(): void;
}

export interface SharedLock {
  readonly array: Int32Array;
  readonly index: number;
}

/** How long a worker waits for the sockmap write lock before trying again (a lost wake-up costs at most this). */
const LOCK_RETRY_MS = 50;

export class ReplyWriter {
  /** Frames the socket has not taken yet, copied: a waiting frame pins nothing else. */
  private readonly waiting = new ReplyBacklog();
  /** `sent` callbacks in order, each with the stream position (sentBytes) its frame ends at. */
  private readonly callbacks: (() => void)[] = [];
  private readonly ends: number[] = [];
  private nextCallback = 0;
  /** Bytes written (queued or sent) and sent since the start. */
  private writtenBytes = 0;
  private sentBytes = 0;
  /**
   * The write lock is ours: from a send's first byte until what waits is sent or ends a chunk
   * (chunks hold whole frames). Not `sentBytes > 0`: a first send can take nothing (a full
   * socket) or throw, and the lock must still be let go.
   */
  private locked = false;
  private blocked = false;
  private closed = false;

  /**
   * @param lock sockmap: the connection's write lock; `tag` (1 + slot) marks it as ours.
   * @param onError the socket is dead; queued frames are dropped and their `sent` never runs.
   */
  constructor(
    private readonly sink: ReplySink,
    private readonly onError: (error: Error) => void,
    private readonly lock: SharedLock | null = null,
    private readonly tag = 1,
  ) {}

  /** Memory held for frames not sent yet (the capacity of their chunks). */
  get pendingBytes(): number {
    return this.waiting.bytes;
  }

  get idle(): boolean {
    return this.waiting.empty && this.nextCallback === this.callbacks.length;
  }

  /**
   * Queues whole frames (length prefixes included), given in parts that are sent gathered;
   * `sent` runs once all of them are on the socket. What the socket takes at once is not
   * copied; what must wait is. The same `sent` for consecutive writes runs once, after the
   * last of them.
   */
  write(parts: readonly Uint8Array[], sent: () => void): void {
    if (this.closed) return;
    let length = 0;
    for (const part of parts) length += part.length;
    this.writtenBytes += length;
    const last = this.callbacks.length - 1;
    if (last >= this.nextCallback && this.callbacks[last] === sent) this.ends[last] = this.writtenBytes;
    else {
      this.callbacks.push(sent);
      this.ends.push(this.writtenBytes);
    }
    if (!this.waiting.empty || this.blocked || (!this.locked && !this.tryLock())) return this.keep(parts, 0);
    const taken = this.send(parts);
    if (taken < 0) return;
    if (taken < length) {
      this.keep(parts, taken);
      return this.waitWritable();
    }
    this.unlock();
    this.runCallbacks();
  }

  /** Drops what is queued and stops; a lock held mid-frame is released (the connection is being closed). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.locked) this.unlock();
    this.waiting.clear();
    this.callbacks.length = this.ends.length = this.nextCallback = 0;
    this.sink.close();
  }

  readonly pump = (): void => {
    this.blocked = false;
    while (!this.closed && !this.waiting.empty) {
      if (!this.locked && !this.tryLock()) return;
      const bytes = this.waiting.first();
      const taken = this.send([bytes]);
      if (taken < 0) return;
      this.waiting.consume(taken);
      if (taken < bytes.length) {
        this.runCallbacks();
        if (!this.closed) this.waitWritable();
        return;
      }
      // A chunk ends on a frame's end: the other workers may write in between.
      this.unlock();
      this.runCallbacks();
    }
  };

  /** Copies the parts' bytes after the first `skip` into the backlog, as one piece: it ends on a frame's end. */
  private keep(parts: readonly Uint8Array[], skip: number): void {
    const rest: Uint8Array[] = [];
    for (const part of parts) {
      if (skip < part.length) rest.push(skip > 0 ? part.subarray(skip) : part);
      skip = Math.max(0, skip - part.length);
    }
    this.waiting.append(rest.length === 1 ? rest[0]! : Buffer.concat(rest));
  }

  /** The bytes the socket took (sentBytes counts them), or -1 when it is dead (then closed). */
  private send(parts: readonly Uint8Array[]): number {
    try {
      const taken = this.sink.send(parts);
      this.sentBytes += taken;
      return taken;
    } catch (error) {
      this.close();
      this.onError(error as Error);
      return -1;
    }
  }

  private waitWritable(): void {
    this.blocked = true;
    this.sink.waitWritable();
  }

  /** Runs the callbacks of the frames now wholly sent, in order; one may close the writer. */
  private runCallbacks(): void {
    while (!this.closed && this.nextCallback < this.callbacks.length && this.ends[this.nextCallback]! <= this.sentBytes) {
      const sent = this.callbacks[this.nextCallback]!;
      this.callbacks[this.nextCallback++] = undefined as unknown as () => void;
      sent();
    }
    if (this.nextCallback === this.callbacks.length) this.callbacks.length = this.ends.length = this.nextCallback = 0;
  }

  private tryLock(): boolean {
    if (this.lock) {
      const { array, index } = this.lock;
      const holder = Atomics.compareExchange(array, index, 0, this.tag);
      if (holder !== 0) {
        this.blocked = true;
        const wait = Atomics.waitAsync(array, index, holder, LOCK_RETRY_MS);
        if (wait.async) void wait.value.then(this.pump);
        else setImmediate(this.pump); // the holder let go between the exchange and the wait
        return false;
      }
    }
    this.locked = true;
    return true;
  }

  private unlock(): void {
    this.locked = false;
    if (!this.lock) return;
    Atomics.store(this.lock.array, this.lock.index, 0);
    Atomics.notify(this.lock.array, this.lock.index);
  }
}

/** KCM: the worker's own KCM socket, through its MessageWatcher (SEQPACKET: a short send continues the same message). */
export function kcmSink(watcher: MessageWatcher): ReplySink {
  return { send: (parts) => watcher.send(parts), waitWritable: () => watcher.waitWritable(), close: () => {} };
}

/** sockmap: the connection's TCP socket, polled for writability on this worker's loop. */
export function tcpSink(fd: number, onWritable: () => void): ReplySink {
  const native = nativeKtls();
  let poll: NativeFdPoll | null = null;
  return {
    // Every sockmap frame is one part (kernel-connection.ts).
    send: (parts) => native.send(fd, parts.length === 1 ? parts[0]! : Buffer.concat(parts)) ?? 0,
    waitWritable() {
      // Level-triggered: stop at the first event. A dead socket shows in the next send, which reports it.
      poll ??= new native.FdPoll(fd, () => {
        poll?.start(0);
        onWritable();
      });
      poll.start(POLL_WRITABLE);
    },
    close() {
      poll?.close();
      poll = null;
    },
  };
}
