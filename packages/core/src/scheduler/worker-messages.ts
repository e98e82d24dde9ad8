import type { ThreadSliceOutcome } from './thread-slice.js';
import type { DeadlinePolicy } from '../server/timeouts.js';

/**
 * Main thread → worker. User-space requests go as bare ArrayBuffer batches (batch.ts);
 * kernel transports send these control messages on the same port.
 */
export type WorkerControl = AttachMessage | DetachMessage;

export type KernelTransportName = 'kcm' | 'sockmap' | 'native';

/**
 * Connection-close reasons for the errors a kernel parser leaves on the TCP socket. The main
 * thread meets them as hangups; a worker may meet them first, as the error of its next reply
 * send (sendmsg returns the socket's pending error), and must count the close the same way.
 * ETIMEDOUT: the parser held a partial frame past frameTimeoutMs (SO_RCVTIMEO).
 */
export const PARSER_ERROR_REASONS: Readonly<Record<string, string>> = {
  EMSGSIZE: 'frame_too_large',
  EPROTO: 'protocol',
  ETIMEDOUT: 'frame_timeout',
  // native: the I/O thread's word for replies left unread past maxPendingWriteBytes.
  ENOBUFS: 'write_backlog',
};

/** Limits a worker applies to the connections it reads itself. */
export interface KernelLimits extends DeadlinePolicy {
  readonly maxFrameBytes: number;
  readonly maxInFlightPerConnection: number;
  readonly maxInFlight: number;
  /** Requests one worker runs at once, over all its connections (kernel-budget.ts). */
  readonly workerQueueDepth: number;
  /** Reply bytes queued for a client that does not read before its connection is closed. */
  readonly maxPendingWriteBytes: number;
}

/** Serve a connection: read whole request frames from `fd`, write replies to `replyFd`. */
export interface AttachMessage {
  readonly type: 'attach';
  readonly connection: number;
  readonly transport: KernelTransportName;
  /** The receiving worker's slot, and how many slots there are (ConnectionCounters' layout). */
  readonly slot: number;
  readonly workers: number;
  /** KCM: this worker's KCM socket. sockmap: this worker's target socket for the connection. native: its end of the I/O thread's pair. */
  readonly fd: number;
  /** KCM: the same KCM socket (each message goes out whole). sockmap: the TCP socket, under the shared write lock. native: the pair again (answer records). */
  readonly replyFd: number;
  /** ConnectionCounters' buffer. */
  readonly counters: SharedArrayBuffer;
  /** ServerCounters' buffer. */
  readonly serverCounters: SharedArrayBuffer;
  /** The slot's WorkerTally buffer: the receiving worker counts its requests there. */
  readonly tally: SharedArrayBuffer;
  readonly limits: KernelLimits;
}

/**
 * Stop serving a connection, then answer `detached`.
 * - `abort`: the connection is dead (reset, oversized frame, protocol error): stop now, drop results;
 * - `finish`: the peer closed its side: finish what is in flight, for up to graceMs;
 * - `shutdown`: the server is closing: answer new requests "shutting down", finish the rest, for up to graceMs;
 * - `age`: the connection reached maxConnectionAgeMs: refuse new requests as `shutdown` does, and
 *   keep serving the rest; no `detached` is owed (the main thread sends `shutdown` once it is quiet).
 */
export interface DetachMessage {
  readonly type: 'detach';
  readonly connection: number;
  readonly mode: 'abort' | 'finish' | 'shutdown' | 'age';
  readonly graceMs: number;
  /**
   * `finish` after a FIN whose frame count the kernel's parser gave (frame_tally.h): how many
   * frames must have been read before detaching, by this worker (`slot`: sockmap's round robin
   * fixes each frame's worker) or by all of them together (`connection`: KCM gives a message to
   * whichever socket has room). Absent: not known, only what has arrived is read.
   */
  readonly expect?: FrameExpectation;
}

export interface FrameExpectation {
  readonly frames: number;
  readonly scope: 'slot' | 'connection';
}

/** Worker → main thread. */
export type WorkerMessage =
  | {
      readonly type: 'ready';
      readonly threadId: number;
      /** Why the codec cannot serve kernel transports ("cannot …": no peek/errorReply in its worker half); null when it can. */
      readonly kernelUnsupported: string | null;
      /** WorkerCodec.methods and .warnings. */
      readonly methods: readonly string[] | undefined;
      readonly warnings: readonly string[];
      /** Whether the worker got the time slice it asked for (threadSliceUs); null when not asked. */
      readonly slice: ThreadSliceOutcome | null;
    }
  | { readonly type: 'replies'; readonly batch: ArrayBuffer }
  | { readonly type: 'codec-error'; readonly key: number; readonly message: string }
  | KernelWorkerMessage;

export type KernelWorkerMessage =
  /** The worker counts `name` in `buffer` (a MethodTally's) from now on; posted before the method's first count. */
  | { readonly type: 'method'; readonly name: string; readonly buffer: SharedArrayBuffer }
  | { readonly type: 'detached'; readonly connection: number }
  /** The codec threw instead of producing a reply (a codec bug); the request got a generic error reply. */
  | { readonly type: 'codec-threw'; readonly message: string }
  /** The worker stopped serving a connection on its own: the main thread closes it (`reason` is the stats key). */
  | { readonly type: 'connection-failed'; readonly connection: number; readonly reason: string; readonly message: string };
