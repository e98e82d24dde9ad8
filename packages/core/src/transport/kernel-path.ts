import type { FrameTally, HangupError } from '@kmux/native';
import type { ServerStatsSnapshot } from '../stats/server-stats.js';
import type { KtlsSocket } from '../tls/ktls-socket.js';
import type { Cause } from './attached-connection.js';

/**
 * The kernel objects behind a kernel transport (KCM or sockmap), as the main thread sees
 * them: what a connection's fds are and how to let go of them. Everything else (workers,
 * hangups, limits, shutdown) is common and lives in KernelTransport.
 */
export interface KernelPath {
  readonly name: 'kcm' | 'sockmap' | 'native';
  /**
   * Whether a connection can outlive a worker's death, served by the replacement on the
   * same fds. KCM yes: its sockets deliver whole messages, so the dead worker leaves none
   * half-read. sockmap no: the dead worker may have read part of a frame from its target
   * stream, and what follows would be misframed.
   */
  readonly survivesWorkerDeath: boolean;
  /**
   * Which worker gets a connection's frame i: `round-robin`, i % workers (sockmap's verdict),
   * so each worker knows its share of a final count; `any`, whichever has room (KCM).
   */
  readonly spread: 'round-robin' | 'any';
  /**
   * native only: worker `slot` died. Nothing more goes to its slot until workerReady(slot);
   * returned, per connection, are the heads (first bytes of the body) of every request it
   * held, read or not, for the transport to answer with worker_died: the connection lives on.
   */
  takeWorker?(slot: number): ReadonlyMap<KernelBinding, readonly Buffer[]>;
  /**
   * native only: where the frames it sheds over the in-flight limits go, as the heads of their
   * bodies, to be answered "overloaded" (set once by the transport).
   */
  onShed?(handler: (binding: KernelBinding, heads: readonly Buffer[]) => void): void;
  /** native only: a worker serves `slot` again. */
  workerReady?(slot: number): void;
  /** native only: requests waiting in its I/O thread for a worker. */
  queued?(): number;
  /** Whether it frames kTLS connections (native: the I/O thread reads records). */
  readonly ktls: boolean;
  /**
   * Puts an unread TCP socket under kernel framing. `onHangup` reports its end once:
   * EOF or EPIPE for a peer close, EMSGSIZE for a length over maxFrameBytes, EPROTO, ECONNRESET.
   * `ktls` (only where the path takes it): the socket is that KtlsSocket's fd, which keeps it.
   */
  open(tcpFd: number, onHangup: (error: HangupError) => void, ktls?: KtlsSocket): KernelBinding;
  kernelStats(): ServerStatsSnapshot['kernel'];
  /** Releases server-wide kernel objects, after every binding is closed. */
  close(): void;
}

export interface KernelBinding {
  /** Per worker slot: the fd its worker reads whole request frames from. */
  readonly readFds: readonly number[];
  /** Per worker slot: the fd its worker writes replies to. */
  readonly replyFds: readonly number[];
  /** The parser's frame count and the TCP socket's data bytes (see framesInAll). */
  framed(): FrameTally;
  /** Reply bytes still queued in kernel objects that close() would drop (KCM sockets); 0 when none. */
  unsent(): number;
  /**
   * KCM only: restarts a transmit the kernel stopped after the peer's FIN, once every request
   * was read (see KcmMux.restartTransmit); false while the transmit is alive.
   */
  restartTransmit?(): boolean;
  /** KCM only: 'EMSGSIZE' once the parser refused a length (see KcmMux.parserError), else null. */
  parserError?(): string | null;
  /** native only: queues a whole frame (length prefix included) for the connection's TCP socket. */
  reply?(frame: Uint8Array): void;
  /** native only: worker `slot` let go (a drain); the heads of the requests it will never read. */
  detached?(slot: number): readonly Buffer[];
  /** native on kTLS: a TLS-specific reason the connection ended (tls_bad_record, ...), which outranks the hangup's. */
  closeCause?(): Cause | null;
  /** Lets go of the connection's kernel objects; only once no worker watches its fds. */
  close(): void;
}
