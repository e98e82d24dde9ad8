/**
 * What the Server needs of a transport: it hands over accepted sockets and worker events,
 * and asks for counts and a graceful shutdown. The user-space transport moves frames
 * through the main thread in batches; the kernel transports (KCM, sockmap) set up kernel
 * objects and let each worker read and answer requests on its own sockets.
 */
import type { ServerCodec } from '../codec/codec.js';
import type { WorkerPool } from '../scheduler/worker-pool.js';
import type { KernelWorkerMessage } from '../scheduler/worker-messages.js';
import type { ResolvedServerOptions } from '../server/options.js';
import type { ServerStats, ServerStatsSnapshot } from '../stats/server-stats.js';
import type { PlaintextSocket } from '../tls/server-tls.js';

export interface TransportContext {
  readonly options: ResolvedServerOptions;
  readonly codec: ServerCodec;
  readonly counters: ServerStats;
  readonly pool: WorkerPool;
}

export interface ServerTransport {
  /** Kernel transports take the socket's fd, so Node must never read it (`pauseOnConnect`). */
  readonly takesFd: boolean;
  /** Requests accepted and not yet answered. */
  readonly inFlight: number;
  /** Requests waiting in the main thread for a worker with room. */
  readonly queued: number;
  /** Serves an accepted socket (the Server has applied maxConnections); a TLS connection comes as its plaintext stream. */
  accept(socket: PlaintextSocket): void;
  workerReady(slot: number): void;
  workerExited(slot: number, reason: string): void;
  replies(slot: number, batch: ArrayBuffer): void;
  codecError(slot: number, key: number, message: string): void;
  kernelMessage(slot: number, message: KernelWorkerMessage): void;
  /** Kernel counters for stats(), if the transport has any. */
  kernelStats(): ServerStatsSnapshot['kernel'];
  /**
   * The listener is closed: answer new requests "shutting down", let in-flight ones finish
   * for up to `timeoutMs`, then close every connection. Runs before the workers stop.
   */
  drainAndClose(timeoutMs: number): Promise<void>;
  /** The workers have stopped: release whatever is left (kernel objects). */
  dispose(): void;
}
