/**
 * The main thread's side of a kernel transport (KCM, sockmap or native, see KernelPath): it takes
 * each accepted socket's fd, sets up the kernel framing and attaches the connection to
 * every worker, which then reads and answers its requests on its own. The main thread
 * never touches a request; it learns of hangups from the kernel, merges the workers'
 * stats, and has connections torn down (kernel-teardown.ts) and idle ones swept (idle-sweep.ts).
 */
import { TLSSocket } from 'node:tls';
import { isSysError, setFrameTimeout } from '@kmux/native';
import { ServerCounters } from '../scheduler/shared-counters.js';
import type { KernelLimits, KernelWorkerMessage } from '../scheduler/worker-messages.js';
import { attachedConnection, type AttachedConnection } from './attached-connection.js';
import { idleConnections } from './idle-sweep.js';
import { connectionLifetimeMs } from '../server/connection-age.js';
import { KernelTeardown } from './kernel-teardown.js';
import type { RequestHead } from '../codec/codec.js';
import { KmuxError, NOT_RUN_SHUTTING_DOWN, OverloadedError, WorkerDiedError } from '../errors.js';
import { encodeFrame } from '../framing/frame-splitter.js';
import type { KernelBinding, KernelPath } from './kernel-path.js';
import type { ServerTransport, TransportContext } from './transport.js';
import { KtlsSocket } from '../tls/ktls-socket.js';
import type { PlaintextSocket } from '../tls/server-tls.js';
import { UserspaceTransport } from './userspace-transport.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class KernelTransport implements ServerTransport {
  readonly takesFd = true;
  private readonly connections = new Map<number, AttachedConnection>();
  private readonly teardown: KernelTeardown;
  private readonly server = new ServerCounters();
  private readonly limits: KernelLimits;
  private readonly idleSweep: NodeJS.Timeout;
  /** native: the answer to a request its I/O thread shed over the in-flight limits. */
  private readonly overloaded: OverloadedError;
  /** Serves the connections the kernel refused (see accept()); made at the first. */
  private fallback: UserspaceTransport | null = null;
  private fallbacks = 0;
  private warnedFull = false;
  private nextId = 1;

  constructor(
    private readonly context: TransportContext,
    private readonly path: KernelPath,
  ) {
    const { options } = context;
    this.teardown = new KernelTeardown(context, path, this.connections);
    this.limits = {
      maxFrameBytes: options.maxFrameBytes,
      maxInFlightPerConnection: options.maxInFlightPerConnection,
      maxInFlight: options.maxInFlight,
      workerQueueDepth: options.workerQueueDepth,
      maxPendingWriteBytes: options.maxPendingWriteBytes,
      deadlineMs: options.deadlineMs,
      methodDeadlines: options.methodDeadlines,
    };
    this.overloaded = new OverloadedError('server', options.maxInFlight);
    path.onShed?.((binding, heads) => this.shed(binding, heads));
    this.idleSweep = setInterval(() => this.closeIdle(), Math.min(1000, Math.ceil(options.idleTimeoutMs / 4)));
    this.idleSweep.unref();
  }

  get inFlight(): number {
    return this.server.inFlight + (this.fallback?.inFlight ?? 0);
  }

  get queued(): number {
    // KCM and sockmap workers take requests straight from their sockets; native's wait in its I/O thread.
    return (this.path.queued?.() ?? 0) + (this.fallback?.queued ?? 0);
  }

  accept(socket: PlaintextSocket): void {
    const { counters, options } = this.context;
    // A TLS connection kTLS did not take ('auto': a cipher the kernel lacks) has no plaintext fd.
    if (socket instanceof TLSSocket) return this.acceptInUserspace(socket);
    const ktls = socket instanceof KtlsSocket ? socket : null;
    // Plaintext the TLS library decrypted before the handoff sits in the KtlsSocket, not the kernel.
    if (ktls && (!this.path.ktls || ktls.readableLength > 0)) return this.acceptInUserspace(socket);
    socket.on('error', () => {}); // Node never reads or writes it; errors reach us as hangups
    // As in user space (connection.ts). With Nagle, a reply waits while an earlier one is
    // unacknowledged; once two replies overlap, every later reply waits for the ACK the next
    // request brings: at a steady low rate each reply then lags one request behind.
    socket.setNoDelay(true);
    const fd = ktls ? ktls.fd : (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const id = this.nextId++;
    let binding: KernelBinding;
    try {
      if (typeof fd !== 'number' || fd < 0) throw new Error('the accepted socket has no fd');
      setFrameTimeout(fd, options.frameTimeoutMs);
      binding = this.path.open(
        fd,
        (error) => {
          const connection = this.connections.get(id);
          if (connection) this.teardown.onHangup(connection, error);
        },
        ktls ?? undefined,
      );
    } catch (error) {
      // EOPNOTSUPP: sockmap takes only ESTABLISHED sockets, and this peer sent its FIN (or
      // RST) before the accept. Its requests are still in the receive queue, unread: serve it
      // in user space rather than drop a one-shot client's request.
      if (isSysError(error) && error.code === 'EOPNOTSUPP') return this.acceptInUserspace(socket);
      // Out of room: the kernel path costs more per connection (sockmap: a socketpair per
      // worker, its slots capped by the fd limit) than user space, which needs nothing more.
      if (isSysError(error) && (error.code === 'ENOSPC' || error.code === 'EMFILE' || error.code === 'ENFILE')) {
        if (!this.warnedFull) {
          this.warnedFull = true;
          options.logger.warn(
            `kmux: ${this.path.name} is full (${(error as Error).message}); connections past it are served in user space (raise the fd limit, ulimit -n, for more)`,
          );
        }
        return this.acceptInUserspace(socket);
      }
      socket.destroy();
      counters.connectionError('kernel_setup');
      options.logger.warn(`kmux: ${this.path.name} setup of a connection failed: ${(error as Error).message}`);
      return;
    }
    const connection = attachedConnection(id, socket, binding, options.workers, this.server);
    this.connections.set(id, connection);
    counters.acceptedConnections++;
    counters.openConnections++;
    for (let slot = 0; slot < options.workers; slot++) this.attach(connection, slot);
    if (options.maxConnectionAgeMs) {
      connection.ageTimer = setTimeout(() => this.teardown.age(connection), connectionLifetimeMs(options.maxConnectionAgeMs)).unref();
    }
  }

  private acceptInUserspace(socket: PlaintextSocket): void {
    this.fallback ??= new UserspaceTransport(this.context);
    this.fallbacks++;
    this.fallback.accept(socket);
    socket.resume(); // accepted paused (pauseOnConnect), for the kernel
  }

  workerReady(slot: number): void {
    this.fallback?.workerReady();
    this.path.workerReady?.(slot);
    // A replacement worker takes over the dead one's fds on every surviving connection, also
    // one being drained: KCM may have queued some of its last requests on the dead one's socket.
    for (const connection of this.connections.values()) {
      if (!connection.detaching) {
        this.attach(connection, slot);
        if (connection.aged) this.teardown.sendAge(connection, slot);
      } else if (connection.draining && this.path.survivesWorkerDeath) {
        this.attach(connection, slot);
        const { mode, giveUpAt, frames } = connection.draining;
        this.teardown.sendDetach(connection, slot, mode, Math.max(0, giveUpAt - Date.now()), frames);
      }
    }
  }

  workerExited(slot: number, reason: string): void {
    this.fallback?.workerExited(slot, reason);
    const taken = this.path.takeWorker?.(slot);
    for (const connection of [...this.connections.values()]) {
      // The dead worker's requests are gone; they no longer count against the limits.
      const lost = connection.counters.resetSlot(slot);
      this.server.release(lost);
      if (taken) {
        // native: the I/O thread knows each request the worker held, read or not; they fail alone.
        const heads = taken.get(connection.binding) ?? [];
        this.context.counters.requestsLost('worker_died', heads.length);
        // Those it never read were not counted as received by it.
        this.context.counters.received += Math.max(0, heads.length - lost);
        if (!this.answerFromHeads(connection.binding, heads, new WorkerDiedError(slot, reason))) {
          connection.awaiting.delete(slot);
          this.teardown.detach(connection, 'abort', 0, { reason: 'worker_died', message: `worker ${slot} died: ${reason}` });
        } else if (connection.detaching) {
          this.teardown.detachedFrom(connection, slot);
        }
        continue;
      }
      this.context.counters.requestsLost('worker_died', lost);
      if (lost > 0 || !this.path.survivesWorkerDeath) {
        // Its clients would wait for replies that never come (also one that half-closed and
        // waits for the rest): closing tells them at once.
        connection.awaiting.delete(slot); // it will never answer the detach
        this.teardown.detach(connection, 'abort', 0, { reason: 'worker_died', message: `worker ${slot} died: ${reason}` });
      } else if (connection.detaching) {
        this.teardown.detachedFrom(connection, slot);
      }
    }
  }

  /**
   * native: requests the I/O thread refused before any worker saw them: over the in-flight limits
   * ("overloaded"), or, once the connection drains, with no worker left to take them.
   */
  private shed(binding: KernelBinding, heads: readonly Buffer[]): void {
    const connection = this.connectionOf(binding);
    if (connection?.draining?.mode === 'shutdown') return this.refuse(binding, heads);
    this.countUnrun(heads.length, 'overloaded');
    if (!this.answerFromHeads(binding, heads, this.overloaded) && connection) {
      this.teardown.detach(connection, 'abort', 0, { reason: 'protocol', message: 'a shed request could not be read' });
    }
  }

  /** The connection `binding` was opened for (path.open gives each its own), if it is still held. */
  private connectionOf(binding: KernelBinding): AttachedConnection | undefined {
    for (const connection of this.connections.values()) if (connection.binding === binding) return connection;
    return undefined;
  }

  /**
   * native, in a drain: requests no worker will read, answered "shutting down" unrun. The
   * connection closes once its workers have let go, so one whose head cannot be read (the
   * frames before it were answered) simply goes unanswered with it.
   */
  private refuse(binding: KernelBinding, heads: readonly Buffer[]): void {
    this.countUnrun(heads.length, 'shutting_down');
    this.answerFromHeads(binding, heads, new KmuxError('shutting_down', NOT_RUN_SHUTTING_DOWN));
  }

  private countUnrun(count: number, outcome: 'overloaded' | 'shutting_down'): void {
    this.context.counters.received += count;
    this.context.counters.requestsLost(outcome, count);
  }

  /** Error replies built on the main thread from request heads (a dead worker's, shed ones); false if one cannot be read. */
  private answerFromHeads(binding: KernelBinding, heads: readonly Buffer[], error: KmuxError): boolean {
    const { codec } = this.context;
    const frames: Buffer[] = [];
    let readable = true;
    for (const body of heads) {
      let head: RequestHead;
      try {
        head = codec.peek(body);
      } catch {
        readable = false;
        break;
      }
      if (!head.oneway) frames.push(encodeFrame(codec.errorReply(head, error)));
    }
    // One call for all: each takes the I/O thread's lock and wakes it (whole frames stay whole).
    if (frames.length > 0) binding.reply!(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
    return readable;
  }

  replies(slot: number, batch: ArrayBuffer): void {
    // Only the user-space fallback sends request batches.
    this.fallback?.replies(slot, batch);
  }

  codecError(slot: number, key: number, message: string): void {
    // Only for batched requests (the fallback's); kernel workers report codec-threw instead.
    this.fallback?.codecError(slot, key, message);
  }

  kernelMessage(slot: number, message: KernelWorkerMessage): void {
    switch (message.type) {
      case 'method':
        this.context.counters.workerMethod(slot, message.name, message.buffer);
        break;
      case 'detached': {
        const connection = this.connections.get(message.connection);
        if (!connection) break;
        // native: nothing more goes to this worker; in a drain, what reached its pair after its
        // last read is answered here, unrun (else it goes with the closing connection).
        const unread = connection.binding.detached?.(slot) ?? [];
        if (unread.length > 0 && connection.draining?.mode === 'shutdown') this.refuse(connection.binding, unread);
        this.teardown.detachedFrom(connection, slot);
        break;
      }
      case 'connection-failed': {
        const connection = this.connections.get(message.connection);
        if (!connection) break;
        if (connection.cause?.unexplained) connection.cause = null;
        this.teardown.detach(connection, 'abort', 0, { reason: message.reason, message: message.message });
        break;
      }
      case 'codec-threw':
        this.context.options.logger.error(`kmux: codec ${this.context.codec.name} threw in worker ${slot}: ${message.message}`);
        break;
    }
  }

  kernelStats() {
    const stats = this.path.kernelStats();
    return {
      ...stats,
      ...(this.fallbacks > 0 && { userspaceFallbacks: this.fallbacks }),
      ...(this.teardown.transmitRestarts > 0 && { transmitRestarts: this.teardown.transmitRestarts }),
      ...(this.teardown.failedTransmitRestarts > 0 && { failedTransmitRestarts: this.teardown.failedTransmitRestarts }),
    };
  }

  async drainAndClose(timeoutMs: number): Promise<void> {
    const fallback = this.fallback?.drainAndClose(timeoutMs);
    for (const connection of this.connections.values()) this.teardown.detach(connection, 'shutdown', timeoutMs, null);
    const giveUp = Date.now() + timeoutMs + 1000;
    while (this.connections.size > 0 && Date.now() < giveUp) await sleep(10);
    await fallback;
  }

  dispose(): void {
    clearInterval(this.idleSweep);
    this.fallback?.dispose();
    // The workers are gone, so no watcher is left on these fds.
    for (const connection of [...this.connections.values()]) this.teardown.release(connection);
    this.path.close();
  }

  private attach(connection: AttachedConnection, slot: number): void {
    this.context.pool.control(slot, {
      type: 'attach',
      connection: connection.id,
      transport: this.path.name,
      slot,
      workers: this.context.options.workers,
      fd: connection.binding.readFds[slot]!,
      replyFd: connection.binding.replyFds[slot]!,
      counters: connection.counters.buffer,
      serverCounters: this.server.buffer,
      tally: this.context.counters.workerTally(slot),
      limits: this.limits,
    });
  }

  private closeIdle(): void {
    for (const connection of idleConnections(this.connections.values(), this.context.options.idleTimeoutMs, Date.now())) {
      this.teardown.detach(connection, 'abort', 0, { reason: 'idle_timeout', message: 'idle timeout' });
    }
  }
}
