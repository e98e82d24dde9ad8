import type { MethodNameFormat, NativeNativeMux, NativeTlsEvent } from './binding.js';
import type { HangupError } from './errors.js';
import { requireNative } from './load-native.js';
import { checkInt } from './message-watcher.js';

/**
 * A worker's answer record's length for "answered, no reply owed" (a oneway request). Every
 * request a worker reads from its pair gets exactly one record: [u32 length][u32 index][body].
 */
export const NO_REPLY = 0xffff_ffff;

export interface NativeMuxOptions {
  /** Worker slots: each connection gets one socketpair per slot. */
  workers: number;
  /** A frame whose length prefix is above this ends its connection (EMSGSIZE) before any of it is buffered. */
  maxFrameBytes: number;
  /** A partial frame older than this ends its connection (ETIMEDOUT). */
  frameTimeoutMs: number;
  /** Request bytes the I/O thread holds for all connections (partial and waiting frames) before it stops reading. */
  maxBufferedBytes: number;
  /** Requests a worker holds at most (sent, not yet answered); more wait in the I/O thread. */
  workerQueueDepth: number;
  /**
   * Requests held by workers and waiting in the I/O thread, server-wide and per connection: past
   * either, a frame goes to a worker at once, to be shed ("overloaded") by the worker's own count.
   */
  maxInFlight: number;
  maxInFlightPerConnection: number;
  /** Reply bytes a client leaves unread before its connection ends (ENOBUFS). */
  maxPendingWriteBytes: number;
  /** A busy worker takes another request only if it answered one this recently (µs): its current call is short. */
  busyWorkerGraceUs: number;
  /** ...and only while the time its held requests are estimated to take (µs, learned per worker) stays within this. */
  workerBacklogUs: number;
  /** One cell per worker slot, 1 while that worker's heap is in a GC pause (watchGcPauses): the I/O thread prefers another worker then. */
  gcPauses?: Int32Array;
  /**
   * Slow-lane calls: a request naming one of `methods` (as requests carry them on the wire, in
   * `format`) goes only to an idle worker among the first `workers` slots, and waits apart from
   * the others until one is. Without it, or with no methods, no method name is read.
   */
  slowLane?: { readonly format: MethodNameFormat; readonly methods: readonly string[]; readonly workers: number };
  /**
   * Frames shed over the in-flight limits (past the connection's, or past the server's from a
   * connection holding a fair share of it): the first bytes (up to 1 KiB) of each body, to be
   * answered "overloaded" with connection.reply(). Batched per I/O thread round.
   */
  onShed(connection: NativeConnection, heads: readonly Buffer[]): void;
}

/** What a dead worker held of one connection: the first bytes (up to 1 KiB) of each request body, oldest first. */
export interface LostRequests {
  readonly connection: NativeConnection;
  readonly heads: readonly Buffer[];
}

export interface NativeConnection {
  readonly id: number;
  /**
   * Per worker slot, the worker's end of the connection's stream pair: request frames (4-byte
   * big-endian length + body) to read, answer records to write. A dead worker's end is replaced
   * (NativeMux.takeWorker): read it again when attaching its replacement.
   */
  workerFd(slot: number): number;
  /** Frames whose header was read (mod 2^32), and the length above maxFrameBytes that ended the connection (or 0). */
  counts(): { parsed: number; refused: number };
  /** Reply bytes not yet on the TCP socket (in the I/O thread, or written by a worker and not yet read). */
  unsent(): number;
  /** Queues a whole frame (length prefix included) for the TCP socket, e.g. an error reply built here. */
  reply(frame: Uint8Array): void;
  /**
   * Worker `slot` let go of the connection (a drain): nothing more goes to it. Returns the heads
   * of the requests it held that it will never read, to answer unrun.
   */
  detached(slot: number): Buffer[];
  /**
   * Closes the I/O thread's TCP duplicate and the pairs; only once no worker reads its end. On
   * kTLS, unless an error ended it, our close_notify goes first (not after endRead()), then a FIN.
   */
  close(): void;
  /** kTLS: the next TLS_RX key is set after a KeyUpdate: read on. */
  resumeRead(): void;
  /**
   * kTLS: the peer's KeyUpdate cannot be followed: what was read before it is answered, then the
   * connection ends (EOF, syscall 'key_update'); unsent() counts the replies TCP has not had
   * acknowledged, since a close with the peer's later records unread resets the connection.
   */
  endRead(): void;
  /** kTLS: sends our KeyUpdate message after the replies queued so far, then parks writing ('tx_parked'). */
  keyUpdateTx(message: Uint8Array): void;
  /** kTLS: the next TLS_TX key is set after 'tx_parked': write on. */
  resumeWrite(): void;
}

/** A kTLS connection for NativeMux.add: its TLS version and who handles its KeyUpdate steps. */
export interface NativeTlsOptions {
  readonly tls13: boolean;
  /** TLS 1.3: records or bytes sent under one key after which 'tx_due' asks for our KeyUpdate (Infinity: never). */
  readonly keyUpdateAfter?: { readonly records: number; readonly bytes: number };
  onEvent(event: NativeTlsEvent): void;
}

/** A KeyUpdate limit as the I/O thread takes it: 0 for none. */
function limit(value: number | undefined): number {
  return value === undefined || value === Infinity ? 0 : Math.min(Math.max(1, Math.floor(value)), Number.MAX_SAFE_INTEGER);
}

/**
 * The native transport's I/O thread (native/io_loop.h): it reads accepted TCP connections,
 * splits frames under the limits, spreads them over the workers' stream pairs, and writes
 * their replies whole, so the JS main thread handles no request. One per server.
 */
export class NativeMux {
  readonly #native: NativeNativeMux;
  readonly #connections = new Map<
    number,
    { connection: NativeConnection; onHangup: (error: HangupError) => void; tls: NativeTlsOptions | undefined }
  >();
  #closed = false;

  constructor(options: NativeMuxOptions) {
    const { NativeMux: Native } = requireNative();
    checkInt('workers', options.workers, 1, 0xfffe);
    checkInt('maxFrameBytes', options.maxFrameBytes, 0, 0x7fff_ffff);
    checkInt('frameTimeoutMs', options.frameTimeoutMs, 1, Number.MAX_SAFE_INTEGER);
    checkInt('maxBufferedBytes', options.maxBufferedBytes, 1, Number.MAX_SAFE_INTEGER);
    checkInt('workerQueueDepth', options.workerQueueDepth, 1, 0xffff_ffff);
    checkInt('maxInFlight', options.maxInFlight, 1, 0xffff_ffff);
    checkInt('maxInFlightPerConnection', options.maxInFlightPerConnection, 1, 0xffff_ffff);
    checkInt('maxPendingWriteBytes', options.maxPendingWriteBytes, 1, Number.MAX_SAFE_INTEGER);
    checkInt('busyWorkerGraceUs', options.busyWorkerGraceUs, 1, 0xffff_ffff);
    checkInt('workerBacklogUs', options.workerBacklogUs, 1, 0xffff_ffff);
    const { slowLane } = options;
    if (slowLane) checkInt('slowLane.workers', slowLane.workers, 1, options.workers);
    this.#native = new Native(
      options.workers,
      options.maxFrameBytes,
      options.frameTimeoutMs,
      options.maxBufferedBytes,
      options.workerQueueDepth,
      options.maxInFlight,
      options.maxInFlightPerConnection,
      options.maxPendingWriteBytes,
      options.busyWorkerGraceUs,
      options.workerBacklogUs,
      (id, error, notice) => {
        if (notice === 'shed') return this.#shed(options.onShed);
        const entry = this.#connections.get(id);
        if (error) entry?.onHangup(error);
        else if (notice) entry?.tls?.onEvent(notice);
      },
      options.gcPauses ?? null,
      slowLane && slowLane.methods.length > 0 ? { workers: slowLane.workers, format: slowLane.format, names: slowLane.methods } : null,
    );
  }

  /**
   * Takes over a connected TCP socket nobody has read (pauseOnConnect); the fd is duplicated.
   * `onHangup` reports its end once: code EOF for the peer's FIN (sent once every frame before
   * it is in a worker's pair), else a SysError (ECONNRESET, EMSGSIZE, ETIMEDOUT, EPIPE; ENOBUFS
   * for replies left unread past maxPendingWriteBytes).
   * With `tls` the socket has kTLS TX and RX set: it is read record by record; the end's syscall
   * is 'close_notify', 'eof' (a FIN without one) or 'key_update' (after endRead()); a fatal alert
   * is ECONNABORTED, a record that fails authentication EBADMSG, any other unexpected record EPROTO.
   * Throws a SysError (EMFILE, ...) when its pairs cannot be made.
   */
  add(tcpFd: number, onHangup: (error: HangupError) => void, tls?: NativeTlsOptions): NativeConnection {
    checkInt('tcpFd', tcpFd, 0, 0x7fff_ffff);
    const native = this.#native;
    const after = tls?.keyUpdateAfter;
    const id = native.add(tcpFd, tls !== undefined, tls?.tls13 ?? false, limit(after?.records), limit(after?.bytes));
    const connection: NativeConnection = {
      id,
      workerFd: (slot) => native.workerFds(id)[slot]!,
      counts: () => native.counts(id),
      unsent: () => native.counts(id).unsent,
      reply: (frame) => native.reply(id, frame),
      detached: (slot) => native.detached(id, slot),
      close: () => {
        if (!this.#connections.delete(id)) return;
        native.remove(id);
      },
      resumeRead: () => native.resumeRead(id),
      endRead: () => native.endRead(id),
      keyUpdateTx: (message) => native.keyUpdateTx(id, message),
      resumeWrite: () => native.resumeWrite(id),
    };
    this.#connections.set(id, { connection, onHangup, tls });
    return connection;
  }

  /**
   * Worker `slot` died: nothing more goes to it until setAlive(slot), every connection's pair
   * for it is replaced, and the requests it held (read or still unread) are returned, to fail.
   */
  takeWorker(slot: number): LostRequests[] {
    const lost: LostRequests[] = [];
    // A worker that dies during shutdown, after close(): nothing is left to fail.
    if (this.#closed) return lost;
    for (const { id, heads } of this.#native.takeWorker(slot)) {
      const entry = this.#connections.get(id);
      if (entry) lost.push({ connection: entry.connection, heads });
    }
    return lost;
  }

  #shed(onShed: NativeMuxOptions['onShed']): void {
    for (const { id, heads } of this.#native.takeShed()) {
      const entry = this.#connections.get(id);
      if (entry) onShed(entry.connection, heads);
    }
  }

  /** Frames waiting in the I/O thread for a worker (0 once closed). */
  get queued(): number {
    return this.#closed ? 0 : this.#native.queued();
  }

  /** A worker serves `slot` again: frames go to it. */
  setAlive(slot: number): void {
    // A replacement worker may come up during shutdown, after close(): there is nothing to serve.
    if (!this.#closed) this.#native.setAlive(slot);
  }

  /** Stops the I/O thread and closes every connection it still holds; idempotent. */
  close(): void {
    this.#closed = true;
    this.#connections.clear();
    this.#native.close();
  }
}
