/**
 * The main thread's side of a kernel transport (KCM or sockmap, see KernelPath): it takes
 * each accepted socket's fd, sets up the kernel framing and attaches the connection to
 * every worker, which then reads and answers its requests on its own. The main thread
 * never touches a request; it learns of hangups from the kernel, merges the workers'
 * stats, and tears connections down: detach in every worker, wait for each `detached`,
 * then release the kernel objects and the socket.
 */
import type { Socket } from 'node:net';
import type { HangupError } from '@kmux/native';
import { ConnectionCounters, ServerCounters } from '../scheduler/shared-counters.js';
import type { DetachMessage, KernelLimits, KernelWorkerMessage } from '../scheduler/worker-messages.js';
import type { KernelBinding, KernelPath } from './kernel-path.js';
import type { ServerTransport, TransportContext } from './transport.js';

interface Cause {
  readonly reason: string;
  readonly message: string;
}

interface KernelConnection {
  readonly id: number;
  readonly socket: Socket;
  readonly binding: KernelBinding;
  readonly counters: ConnectionCounters;
  readonly acceptedAt: number;
  detaching: boolean;
  /** Slots whose `detached` is still awaited. */
  readonly awaiting: Set<number>;
  cause: Cause | null;
  warnTimer: NodeJS.Timeout | null;
}

/** Hangup codes that mean the peer closed its side cleanly: replies may still go out. */
const PEER_CLOSED = new Set(['EOF', 'EPIPE']);
const REASON_OF_CODE: Readonly<Record<string, string>> = { EMSGSIZE: 'frame_too_large', EPROTO: 'protocol' };
/** A detach that takes this much longer than its grace is logged (see detach()). */
const SLOW_DETACH_MS = 5000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class KernelTransport implements ServerTransport {
  readonly takesFd = true;
  private readonly connections = new Map<number, KernelConnection>();
  private readonly server = new ServerCounters();
  private readonly limits: KernelLimits;
  private readonly idleSweep: NodeJS.Timeout;
  private nextId = 1;

  constructor(
    private readonly context: TransportContext,
    private readonly path: KernelPath,
  ) {
    const { options } = context;
    this.limits = {
      maxFrameBytes: options.maxFrameBytes,
      maxInFlightPerConnection: options.maxInFlightPerConnection,
      maxInFlight: options.maxInFlight,
      maxPendingWriteBytes: options.maxPendingWriteBytes,
      deadlineMs: options.deadlineMs,
      methodDeadlines: options.methodDeadlines,
    };
    this.idleSweep = setInterval(() => this.closeIdle(), Math.min(1000, Math.ceil(options.idleTimeoutMs / 4)));
    this.idleSweep.unref();
  }

  get inFlight(): number {
    return this.server.inFlight;
  }

  get queued(): number {
    return 0; // workers take requests straight from their sockets
  }

  accept(socket: Socket): void {
    const { counters, options } = this.context;
    socket.on('error', () => {}); // Node never reads or writes it; errors reach us as hangups
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const id = this.nextId++;
    let binding: KernelBinding;
    try {
      if (typeof fd !== 'number' || fd < 0) throw new Error('the accepted socket has no fd');
      binding = this.path.open(fd, (error) => this.onHangup(id, error));
    } catch (error) {
      socket.destroy();
      counters.connectionError('kernel_setup');
      options.logger.warn(`kmux: ${this.path.name} setup of a connection failed: ${(error as Error).message}`);
      return;
    }
    const connection: KernelConnection = {
      id,
      socket,
      binding,
      counters: ConnectionCounters.create(options.workers),
      acceptedAt: Date.now(),
      detaching: false,
      awaiting: new Set(),
      cause: null,
      warnTimer: null,
    };
    this.connections.set(id, connection);
    counters.acceptedConnections++;
    counters.openConnections++;
    for (let slot = 0; slot < options.workers; slot++) this.attach(connection, slot);
  }

  workerReady(slot: number): void {
    // A replacement worker takes over the dead one's fds on every surviving connection.
    for (const connection of this.connections.values()) {
      if (!connection.detaching) this.attach(connection, slot);
    }
  }

  workerExited(slot: number, reason: string): void {
    for (const connection of [...this.connections.values()]) {
      // The dead worker's requests are gone; they no longer count against the limits.
      const lost = connection.counters.resetSlot(slot);
      this.server.release(lost);
      this.context.counters.requestsLost('worker_died', lost);
      if (connection.detaching) {
        this.detachedFrom(connection, slot);
      } else if (lost > 0 || !this.path.survivesWorkerDeath) {
        // Its clients would wait for replies that never come: closing tells them at once.
        this.detach(connection, 'abort', 0, { reason: 'worker_died', message: `worker ${slot} died: ${reason}` });
      }
    }
  }

  replies(): void {
    // Kernel transports never send request batches, so no replies come back.
  }

  codecError(): void {
    // Only for batched requests; kernel workers report codec-threw instead.
  }

  kernelMessage(slot: number, message: KernelWorkerMessage): void {
    switch (message.type) {
      case 'stats':
        this.context.counters.mergeWorkerDelta(slot, message.delta);
        break;
      case 'detached': {
        const connection = this.connections.get(message.connection);
        if (connection) this.detachedFrom(connection, slot);
        break;
      }
      case 'connection-failed': {
        const connection = this.connections.get(message.connection);
        if (connection) this.detach(connection, 'abort', 0, { reason: message.reason, message: message.message });
        break;
      }
      case 'codec-threw':
        this.context.options.logger.error(`kmux: codec ${this.context.codec.name} threw in worker ${slot}: ${message.message}`);
        break;
    }
  }

  kernelStats() {
    return this.path.kernelStats();
  }

  async drainAndClose(timeoutMs: number): Promise<void> {
    for (const connection of this.connections.values()) this.detach(connection, 'shutdown', timeoutMs, null);
    const giveUp = Date.now() + timeoutMs + 1000;
    while (this.connections.size > 0 && Date.now() < giveUp) await sleep(10);
  }

  dispose(): void {
    clearInterval(this.idleSweep);
    // The workers are gone, so no watcher is left on these fds.
    for (const connection of [...this.connections.values()]) this.release(connection);
    this.path.close();
  }

  private attach(connection: KernelConnection, slot: number): void {
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
      limits: this.limits,
    });
  }

  private onHangup(id: number, error: HangupError): void {
    const connection = this.connections.get(id);
    if (!connection) return;
    if (PEER_CLOSED.has(error.code)) return this.detach(connection, 'finish', this.context.options.deadlineMs, null);
    this.detach(connection, 'abort', 0, { reason: REASON_OF_CODE[error.code] ?? 'socket_error', message: error.message });
  }

  /**
   * Asks every live worker to let go of the connection. The fds are released only once
   * each has answered `detached` (or died): closing them under a live watcher could make
   * it watch whatever reuses the fd number, so a worker stuck in a handler delays its
   * connections' release instead, and that is logged.
   */
  private detach(connection: KernelConnection, mode: DetachMessage['mode'], graceMs: number, cause: Cause | null): void {
    connection.cause ??= cause;
    if (connection.detaching && mode !== 'abort') return;
    connection.detaching = true;
    for (let slot = 0; slot < this.context.options.workers; slot++) {
      const message: DetachMessage = { type: 'detach', connection: connection.id, mode, graceMs };
      if (this.context.pool.control(slot, message)) connection.awaiting.add(slot);
    }
    if (connection.awaiting.size === 0) return this.release(connection);
    connection.warnTimer ??= setTimeout(() => {
      const slots = [...connection.awaiting].join(', ');
      this.context.options.logger.warn(`kmux: connection ${connection.id} still waits for worker(s) ${slots} to detach`);
    }, graceMs + SLOW_DETACH_MS);
    connection.warnTimer.unref();
  }

  private detachedFrom(connection: KernelConnection, slot: number): void {
    connection.awaiting.delete(slot);
    if (connection.detaching && connection.awaiting.size === 0) this.release(connection);
  }

  private release(connection: KernelConnection): void {
    const { counters, options } = this.context;
    if (!this.connections.delete(connection.id)) return;
    if (connection.warnTimer) clearTimeout(connection.warnTimer);
    try {
      connection.binding.close();
    } catch (error) {
      options.logger.warn(`kmux: releasing ${this.path.name} connection ${connection.id}: ${(error as Error).message}`);
    }
    // With requests still unread on the socket this is a reset, so the peer learns at once.
    connection.socket.destroy();
    counters.openConnections--;
    const { cause } = connection;
    if (cause) {
      counters.connectionError(cause.reason);
      if (cause.reason !== 'idle_timeout') options.logger.warn(`kmux: connection ${connection.id} closed: ${cause.message}`);
    }
  }

  private closeIdle(): void {
    const { idleTimeoutMs } = this.context.options;
    const now = Date.now();
    for (const connection of this.connections.values()) {
      if (connection.detaching || connection.counters.inFlight() > 0) continue;
      const last = Math.max(connection.acceptedAt, connection.counters.lastActivity());
      if (now - last >= idleTimeoutMs) this.detach(connection, 'abort', 0, { reason: 'idle_timeout', message: 'idle timeout' });
    }
  }
}
