import type { SysError } from './errors.js';
import type { NativeMessageWatcher } from './binding.js';
import { requireNative } from './load-native.js';
import type { PollGroup } from './poll-group.js';

export interface MessageWatcherOptions {
  /**
   * Largest payload (the value of the 4-byte length prefix) accepted. On a
   * stream socket a larger length ends the watcher with EMSGSIZE; on KCM the
   * parser has already enforced it.
   */
  maxFrameBytes: number;
  /**
   * A batch ends once it holds this many bytes (or batchMessages, or the socket
   * has nothing more). Default 256 KiB. A single larger message still comes whole.
   */
  batchBytes?: number;
  /**
   * A batch ends once it holds this many messages. Default 4096. On a message
   * socket (KCM) this is exact: no more are taken from the kernel in one wakeup.
   * A stream socket may exceed it by the frames of its last read.
   */
  batchMessages?: number;
  /**
   * Whole messages, each with its 4-byte header, back to back in `data`:
   * message i is `data.subarray(offsets[i], offsets[i + 1])`, for
   * i < offsets.length - 1. One call per wakeup of the fd.
   */
  onMessages(data: Buffer, offsets: Uint32Array): void;
  /**
   * Called once when reading ends for good: undefined for an orderly end of
   * stream (the peer closed between frames), else why (ECONNRESET, EMSGSIZE,
   * EPROTO for a stream that ended inside a frame, ...). The fd is not closed.
   */
  onClose(error: SysError | undefined): void;
  /** Called once after each waitWritable(), when the fd can take data again. */
  onWritable?(): void;
  /**
   * Read when this group does (it pauses and resumes all its members at once), instead of
   * polling the fd on its own. pause() or resume() takes the watcher out of the group.
   */
  group?: PollGroup;
}

/**
 * Reads whole messages from an fd on the event loop of the thread that created
 * it (the main thread or a worker: fds are process-wide, so a worker can watch
 * a KCM socket or a sockmap target that the main thread set up). The framing
 * follows the socket type: SOCK_SEQPACKET (KCM) and SOCK_DGRAM deliver
 * messages as the kernel framed them; SOCK_STREAM (sockmap targets, plain TCP)
 * is re-split on the 4-byte big-endian length prefix.
 *
 * The watcher never owns the fd: close() stops watching, and whoever created
 * the fd closes it afterwards (KcmMux.close(), SockmapConnection.remove()).
 * Close the watcher before the fd, or a reused fd number gets watched.
 */
export class MessageWatcher {
  readonly fd: number;
  #native: NativeMessageWatcher;
  #closed = false;

  constructor(fd: number, options: MessageWatcherOptions) {
    const { MessageWatcher: Native } = requireNative();
    const { maxFrameBytes, batchBytes = 256 * 1024, batchMessages = 4096, onMessages, onClose, onWritable, group } = options;
    checkInt('maxFrameBytes', maxFrameBytes, 0, 0x7fff_ffff);
    checkInt('batchBytes', batchBytes, 1, 0x7fff_ffff);
    checkInt('batchMessages', batchMessages, 1, 0x7fff_ffff);
    this.fd = fd;
    this.#native = new Native(fd, maxFrameBytes, batchBytes, batchMessages, onMessages, (error) => {
      this.#closed = true;
      onClose(error);
    }, onWritable ?? (() => {}), group?.native);
  }

  /** True once close() was called or onClose reported the end. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends one whole message (header included), given as parts gathered into one
   * sendmsg (a stream socket may take more than IOV_MAX parts, in several), without
   * blocking. Returns the bytes the kernel took: all of them, or fewer when its
   * buffer is full (0 for none). Then call waitWritable() and, in onWritable, send
   * the rest: on KCM the rest continues the same message. The caller keeps what is
   * unsent, so the native side holds no queue.
   * Throws a SysError (EPIPE, ECONNRESET, ...) when the socket is dead.
   */
  send(parts: readonly Uint8Array[]): number {
    return this.#native.send(parts);
  }

  /** Arms a single onWritable callback. */
  waitWritable(): void {
    this.#native.waitWritable();
  }

  /**
   * Stops reading (idempotent) until resume(): what the peer sends waits in the kernel.
   * A member of a PollGroup leaves it, here and in resume().
   * On KCM the mux gives further messages to the other KCM sockets once this one's
   * receive buffer is full, and closes the TCP window when none has room. A stream
   * socket (sockmap target) has no such backpressure: its sender queues without bound.
   */
  pause(): void {
    if (!this.#closed) this.#native.pause();
  }

  /** Reads again (idempotent); what arrived meanwhile comes at the next loop turn. */
  resume(): void {
    if (!this.#closed) this.#native.resume();
  }

  /**
   * Reads, now and paused or not, everything the socket holds, in as many onMessages
   * calls as it takes; returns how many messages that was. For the last reads after the
   * peer closed, when a message may be there before the watcher's next wakeup.
   */
  flush(): number {
    return this.#closed ? 0 : this.#native.flush();
  }

  /** Stops watching (idempotent). No onClose follows; the fd stays open. */
  close(): void {
    this.#closed = true;
    this.#native.close();
  }
}

/** Calls fn for each message of a batch, as a view (no copy) including its header. */
export function forEachMessage(data: Buffer, offsets: Uint32Array, fn: (message: Buffer, index: number) => void): void {
  for (let i = 0; i + 1 < offsets.length; i++) fn(data.subarray(offsets[i], offsets[i + 1]), i);
}

export function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}
