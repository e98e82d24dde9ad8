/**
 * Writes whole reply frames on a kernel transport from a worker thread, without blocking:
 * when the socket takes only part of a frame, the rest waits for it to become writable,
 * and later frames queue behind it, so one writer's frames never interleave.
 *
 * - KCM: the worker's own KCM socket. Each KCM socket is written by one worker only and
 *   the kernel sends each message whole on the TCP connection, so no lock is needed.
 * - sockmap: every worker writes the connection's TCP socket itself. A frame that goes
 *   out in several sends would interleave with another worker's, so a worker holds the
 *   connection's shared write lock from a frame's first byte to its last.
 */
import { POLL_WRITABLE, nativeKtls, type MessageWatcher, type NativeFdPoll } from '@kmux/native';

/** A non-blocking byte sink: send() returns the bytes taken (0 when full) or throws when the socket is dead. */
export interface ReplySink {
  send(bytes: Uint8Array): number;
  /** Calls the writer's pump once the socket can take data again. */
  waitWritable(): void;
  close(): void;
}

interface Pending {
  readonly frame: Buffer;
  readonly sent: () => void;
}

export interface SharedLock {
  readonly array: Int32Array;
  readonly index: number;
}

/** How long a worker waits for the sockmap write lock before trying again (a lost wake-up costs at most this). */
const LOCK_RETRY_MS = 50;

export class ReplyWriter {
  private readonly queue: Pending[] = [];
  private head = 0;
  /** Bytes of the head frame already sent. */
  private offset = 0;
  /**
   * The write lock is ours: from a frame's first send to its last byte. Not `offset > 0`: a first
   * send can take nothing (a full socket) or throw, and the lock must still be let go.
   */
  private locked = false;
  private blocked = false;
  private closed = false;
  private queuedBytes = 0;

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

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  get idle(): boolean {
    return this.head === this.queue.length;
  }

  /** Queues one whole frame (length prefix included); `sent` runs once all of it is on the socket. */
  write(frame: Buffer, sent: () => void): void {
    if (this.closed) return;
    this.queue.push({ frame, sent });
    this.queuedBytes += frame.length;
    if (!this.blocked) this.pump();
  }

  /** Drops what is queued and stops; a lock held mid-frame is released (the connection is being closed). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.locked) this.unlock();
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
    this.sink.close();
  }

  readonly pump = (): void => {
    this.blocked = false;
    while (!this.closed && this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      if (!this.locked && !this.tryLock()) return;
      let taken: number;
      try {
        taken = this.sink.send(this.offset === 0 ? item.frame : item.frame.subarray(this.offset));
      } catch (error) {
        this.close();
        this.onError(error as Error);
        return;
      }
      this.offset += taken;
      if (this.offset < item.frame.length) {
        this.blocked = true;
        this.sink.waitWritable();
        return;
      }
      this.offset = 0;
      this.unlock();
      this.queue[this.head++] = undefined as unknown as Pending;
      this.queuedBytes -= item.frame.length;
      item.sent();
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
  };

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
  return { send: (bytes) => watcher.send(bytes), waitWritable: () => watcher.waitWritable(), close: () => {} };
}

/** sockmap: the connection's TCP socket, polled for writability on this worker's loop. */
export function tcpSink(fd: number, onWritable: () => void): ReplySink {
  const native = nativeKtls();
  let poll: NativeFdPoll | null = null;
  return {
    send: (bytes) => native.send(fd, bytes) ?? 0,
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
