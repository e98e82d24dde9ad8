import { once } from 'node:events';
import { createServer as createTcpServer, type Server as NetServer, type Socket } from 'node:net';
import type { ServerCodec } from '../codec/codec.js';
import { WorkerPool } from '../scheduler/worker-pool.js';
import { toPrometheus } from '../stats/prometheus.js';
import { ServerStats, type ServerStatsSnapshot } from '../stats/server-stats.js';
import { planServerTls, ServerTls } from '../tls/server-tls.js';
import { readTlsStat } from '../tls/tls-stat.js';
import { createTransport, transportConstraints } from '../transport/create.js';
import { describeTransport, selectTransport, type TransportReport } from '../transport/select.js';
import type { ServerTransport } from '../transport/transport.js';
import { applyThreadSlice } from '../scheduler/thread-slice.js';
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js';

export interface ListenOptions {
  readonly host?: string;
  readonly port?: number;
}

export interface ServerHealth {
  readonly live: boolean;
  readonly ready: boolean;
  /** 'serving', 'draining', 'no live worker' or 'not listening' (also once closed). */
  readonly reason: string;
}

export interface CloseOptions {
  /** How long in-flight requests may take to finish before connections are cut. Default 10 s. */
  readonly timeoutMs?: number;
}

export interface CloseReport {
  /**
   * Requests still running at the drain deadline. User space answers each with a
   * `shutting_down` error reply (none for oneway); KCM and sockmap cut them off with their
   * connection (counted as `connection_closed`).
   */
  readonly cutOff: number;
}

/**
 * A kmux server: accepts connections and serves their requests on a pool of worker
 * threads, each reply written whole on the connection it came from. How frames get from
 * the socket to the workers is the transport's business (transport/): through the main
 * thread in batches (user space), or straight from kernel-framed sockets (KCM, sockmap).
 */
export class Server {
  private readonly options: ResolvedServerOptions;
  private readonly codec: ServerCodec;
  private readonly counters: ServerStats;
  private pool: WorkerPool | null = null;
  private transportImpl: ServerTransport | null = null;
  private listener: NetServer | null = null;
  private report: TransportReport | null = null;
  private tls: ServerTls | null = null;
  private closing = false;
  private closed: Promise<CloseReport> | null = null;
  /** close() has finished. */
  private stopped = false;

  constructor(options: ServerOptions) {
    this.options = resolveServerOptions(options);
    this.codec = this.options.codec;
    this.counters = new ServerStats(this.options.workers);
  }

  /** The transport in use and why better ones were not taken; null before listen(). */
  get transport(): TransportReport | null {
    return this.report;
  }

  /**
   * Starts the workers, chooses the transport (the codec's worker half decides whether
   * kernel transports can serve it), then listens. Resolves with the bound address.
   */
  async listen({ host = '127.0.0.1', port = 0 }: ListenOptions = {}): Promise<{ host: string; port: number }> {
    if (this.listener || this.pool) throw new Error('server is already listening');
    // Before the workers start: 'require' on a kernel without kTLS fails here.
    if (this.options.tls) this.tls = new ServerTls(planServerTls(this.options.ktls), this.options.tls, this.options.ktlsKeyUpdateAfter);
    // The dispatching thread too: it must preempt a handler to hand out the next fast call.
    this.counters.threadSlice = { requestedUs: this.options.threadSliceUs || null, mainThread: applyThreadSlice(this.options.threadSliceUs) };
    const pool = await this.startWorkers();
    let listener: NetServer;
    try {
      const report = await selectTransport(this.options.transport, transportConstraints(this.options, pool, this.tls?.report ?? null));
      this.report = this.tls ? { ...report, tls: this.tls.report } : report;
      this.options.logger.info(`kmux: transport ${describeTransport(this.report)}`);
      const transport = createTransport(this.report.name, { options: this.options, codec: this.codec, counters: this.counters, pool });
      this.transportImpl = transport;
      listener = this.createListener(transport);
      this.listener = listener;
      listener.listen(port, host);
      await once(listener, 'listening');
    } catch (error) {
      // Leave nothing running, so the caller can retry or exit.
      this.listener = null;
      this.transportImpl?.dispose();
      this.transportImpl = null;
      await pool.close();
      this.pool = null;
      throw error;
    }
    const address = listener.address();
    if (address === null || typeof address === 'string') throw new Error('listener has no TCP address');
    return { host: address.address, port: address.port };
  }

  /** Counters, latency percentiles per method and per worker, queue depths; with TLS, kTLS counters and /proc/net/tls_stat. */
  stats(): ServerStatsSnapshot {
    const transport = this.transportImpl;
    const snapshot = this.counters.snapshot(transport?.inFlight ?? 0, transport?.queued ?? 0, transport?.kernelStats());
    if (!this.tls) return snapshot;
    const tlsStat = readTlsStat();
    return { ...snapshot, tls: this.tls.snapshot(), ...(tlsStat ? { kernel: { ...snapshot.kernel, tls: tlsStat } } : {}) };
  }

  /**
   * For health checks: `live` while the server is listening, its drain included (restarting it
   * then would cut the requests it is finishing); `ready` while it also takes new requests and
   * has a live worker. Ready turns false as soon as close() begins, so a balancer polling
   * readiness sends no new work to a draining server.
   */
  health(): ServerHealth {
    if (!this.listener || this.stopped) return { live: false, ready: false, reason: 'not listening' };
    if (this.closing) return { live: true, ready: false, reason: 'draining' };
    if (!this.stats().workers.some((worker) => worker.live)) return { live: true, ready: false, reason: 'no live worker' };
    return { live: true, ready: true, reason: 'serving' };
  }

  /** The same stats in Prometheus text format. */
  metrics(): string {
    return toPrometheus(this.stats());
  }

  /**
   * Stops accepting connections, answers new requests with "shutting down", lets
   * in-flight requests finish for up to `timeoutMs`, then answers or cuts off the rest
   * (CloseReport), closes every connection and stops the workers. User space closes a
   * connection only once its client has sent nothing for 200 ms (or at `timeoutMs`): a request
   * on its way would meet the close unanswered, while refused it is sent elsewhere by kmux clients.
   */
  close(options: CloseOptions = {}): Promise<CloseReport> {
    this.closed ??= this.shutDown(options);
    return this.closed;
  }

  private async shutDown({ timeoutMs = 10_000 }: CloseOptions): Promise<CloseReport> {
    this.closing = true;
    this.tls?.close();
    const closedWithConnection = (): number => this.stats().requests.outcomes.connection_closed ?? 0;
    const closedBefore = this.transportImpl?.takesFd ? closedWithConnection() : 0;
    const listenerClosed = this.listener ? new Promise((resolve) => this.listener!.close(resolve)) : null;
    await this.transportImpl?.drainAndClose(timeoutMs);
    await this.pool?.close();
    this.transportImpl?.dispose();
    for (let slot = 0; slot < this.options.workers; slot++) this.counters.workerExited(slot);
    await listenerClosed;
    this.stopped = true;
    const cutOffKernel = this.transportImpl?.takesFd ? closedWithConnection() - closedBefore : 0;
    return { cutOff: this.counters.cutOffAtClose + cutOffKernel };
  }

  private async startWorkers(): Promise<WorkerPool> {
    const pool = new WorkerPool(
      { size: this.options.workers, codec: this.codec.worker, resourceLimits: this.options.resourceLimits, threadSliceUs: this.options.threadSliceUs },
      {
        onReplies: (slot, batch) => this.transportImpl?.replies(slot, batch),
        onCodecError: (slot, key, message) => this.transportImpl?.codecError(slot, key, message),
        onKernelMessage: (slot, message) => this.transportImpl?.kernelMessage(slot, message),
        onWorkerExit: (slot, reason) => {
          this.options.logger.error(`kmux: worker ${slot} exited: ${reason}`);
          this.counters.workerExited(slot);
          this.transportImpl?.workerExited(slot, reason);
        },
        onWorkerReady: (slot, threadId, slice) => {
          this.counters.workerReady(slot, threadId, slice);
          this.transportImpl?.workerReady(slot);
        },
      },
    );
    this.pool = pool;
    try {
      await pool.start();
    } catch (error) {
      await pool.close();
      this.pool = null;
      throw error;
    }
    this.counters.series.declare(pool.methods);
    for (const warning of pool.warnings) this.options.logger.warn(`kmux: ${warning}`);
    return pool;
  }

  private createListener(transport: ServerTransport): NetServer {
    const admit = (): boolean => {
      const open = this.counters.openConnections + (this.tls?.handshaking ?? 0);
      if (!this.closing && open < this.options.maxConnections) return true;
      this.counters.rejectedConnections++;
      return false;
    };
    if (this.tls) {
      return this.tls.createListener({
        admit,
        serve: (socket) => {
          // The handshake may end after close() began.
          if (this.closing) socket.destroy();
          else transport.accept(socket);
        },
        failed: (kind, error) => {
          // close() abandons handshakes in progress: counted like the connections it cuts.
          if (this.closing) return this.counters.connectionError('shutdown');
          this.counters.connectionError(kind);
          this.options.logger.warn(`kmux: TLS connection failed (${kind}): ${error.message}`);
        },
      });
    }
    // A kernel transport takes the fd: Node must not read a byte of it.
    return createTcpServer({ allowHalfOpen: true, pauseOnConnect: transport.takesFd }, (socket: Socket) => {
      if (admit()) transport.accept(socket);
      else socket.destroy();
    });
  }
}
