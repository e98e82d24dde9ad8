/**
 * The main thread's side of a kernel transport (KCM or sockmap, see KernelPath): it takes
 * each accepted socket's fd, sets up the kernel framing and attaches the connection to
 * every worker, which then reads and answers its requests on its own. The main thread
 * never touches a request; it learns of hangups from the kernel, merges the workers'
 * stats, and tears connections down: detach in every worker, wait for each `detached`,
 * then release the kernel objects and the socket.
 */
import type { Socket } from 'node:net';
import { framesInAll, isSysError, setFrameTimeout, type HangupError } from '@kmux/native';
import { ConnectionCounters, ServerCounters } from '../scheduler/shared-counters.js';
import { PARSER_ERROR_REASONS, type DetachMessage, type FrameExpectation, type KernelLimits, type KernelWorkerMessage } from '../scheduler/worker-messages.js';
import type { KernelBinding, KernelPath } from './kernel-path.js';
import type { ServerTransport, TransportContext } from './transport.js';
import { UserspaceTransport } from './userspace-transport.js';

interface Cause {
  readonly reason: string;
  readonly message: string;
  /** A hangup that could not say why: a worker's report of the same close replaces it. */
  readonly unexplained?: boolean;
}

interface KernelConnection {
  readonly id: number;
  readonly socket: Socket;
  /** The peer's address, kept for the close's log line (a destroyed socket no longer knows it). */
  readonly peer: string;
  readonly binding: KernelBinding;
  readonly counters: ConnectionCounters;
  readonly acceptedAt: number;
  detaching: boolean;
  /** A detach that lets the workers finish (not `abort`): what a replacement worker is told too. */
  draining: { mode: DetachMessage['mode']; giveUpAt: number; frames: number | undefined } | null;
  /** Slots whose `detached` is still awaited. */
  readonly awaiting: Set<number>;
  cause: Cause | null;
  /** The peer sent its FIN: KCM may have stopped transmitting (see releaseWhenSent). */
  peerClosed: boolean;
  warnTimer: NodeJS.Timeout | null;
  /** The parser's frame count when the idle sweep last looked, and when it last saw it move. */
  parsedSeen: number;
  parsedAt: number;
}

/** Hangup codes that mean the peer closed its side cleanly: replies may still go out. */
const PEER_CLOSED = new Set(['EOF', 'EPIPE']);
/** A detach that takes this much longer than its grace is logged (see detach()). */
const SLOW_DETACH_MS = 5000;
/** How long a clean close waits for the kernel to take the replies already sent (releaseWhenSent). */
const UNSENT_WAIT_MS = 1000;
/** How long replies may sit unsent, with TCP idle, before the transmit counts as stopped. */
const STALLED_MS = 20;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class KernelTransport implements ServerTransport {
  readonly takesFd = true;
  private readonly connections = new Map<number, KernelConnection>();
  private readonly server = new ServerCounters();
  private readonly limits: KernelLimits;
  private readonly idleSweep: NodeJS.Timeout;
  /** Serves the connections the kernel refused (see accept()); made at the first. */
  private fallback: UserspaceTransport | null = null;
  private fallbacks = 0;
  private transmitRestarts = 0;
  private warnedFull = false;
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
      workerQueueDepth: options.workerQueueDepth,
      maxPendingWriteBytes: options.maxPendingWriteBytes,
      deadlineMs: options.deadlineMs,
      methodDeadlines: options.methodDeadlines,
    };
    this.idleSweep = setInterval(() => this.closeIdle(), Math.min(1000, Math.ceil(options.idleTimeoutMs / 4)));
    this.idleSweep.unref();
  }

  get inFlight(): number {
    return this.server.inFlight + (this.fallback?.inFlight ?? 0);
  }

  get queued(): number {
    // Workers take kernel-framed requests straight from their sockets.
    return this.fallback?.queued ?? 0;
  }

  accept(socket: Socket): void {
    const { counters, options } = this.context;
    socket.on('error', () => {}); // Node never reads or writes it; errors reach us as hangups
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const id = this.nextId++;
    let binding: KernelBinding;
    try {
      if (typeof fd !== 'number' || fd < 0) throw new Error('the accepted socket has no fd');
      setFrameTimeout(fd, options.frameTimeoutMs);
      binding = this.path.open(fd, (error) => this.onHangup(id, error));
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
    const connection: KernelConnection = {
      id,
      socket,
      peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
      binding,
      counters: ConnectionCounters.create(options.workers),
      acceptedAt: Date.now(),
      detaching: false,
      draining: null,
      awaiting: new Set(),
      cause: null,
      peerClosed: false,
      warnTimer: null,
      parsedSeen: 0,
      parsedAt: 0,
    };
    this.connections.set(id, connection);
    counters.acceptedConnections++;
    counters.openConnections++;
    for (let slot = 0; slot < options.workers; slot++) this.attach(connection, slot);
  }

  private acceptInUserspace(socket: Socket): void {
    this.fallback ??= new UserspaceTransport(this.context);
    this.fallbacks++;
    this.fallback.accept(socket);
    socket.resume(); // accepted paused (pauseOnConnect), for the kernel
  }

  workerReady(slot: number): void {
    this.fallback?.workerReady();
    // A replacement worker takes over the dead one's fds on every surviving connection, also
    // one being drained: KCM may have queued some of its last requests on the dead one's socket.
    for (const connection of this.connections.values()) {
      if (!connection.detaching) {
        this.attach(connection, slot);
      } else if (connection.draining && this.path.survivesWorkerDeath) {
        this.attach(connection, slot);
        const { mode, giveUpAt, frames } = connection.draining;
        this.sendDetach(connection, slot, mode, Math.max(0, giveUpAt - Date.now()), frames);
      }
    }
  }

  workerExited(slot: number, reason: string): void {
    this.fallback?.workerExited(slot, reason);
    for (const connection of [...this.connections.values()]) {
      // The dead worker's requests are gone; they no longer count against the limits.
      const lost = connection.counters.resetSlot(slot);
      this.server.release(lost);
      this.context.counters.requestsLost('worker_died', lost);
      if (lost > 0 || !this.path.survivesWorkerDeath) {
        // Its clients would wait for replies that never come (also one that half-closed and
        // waits for the rest): closing tells them at once.
        connection.awaiting.delete(slot); // it will never answer the detach
        this.detach(connection, 'abort', 0, { reason: 'worker_died', message: `worker ${slot} died: ${reason}` });
      } else if (connection.detaching) {
        this.detachedFrom(connection, slot);
      }
    }
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
        if (connection) this.detachedFrom(connection, slot);
        break;
      }
      case 'connection-failed': {
        const connection = this.connections.get(message.connection);
        if (!connection) break;
        if (connection.cause?.unexplained) connection.cause = null;
        this.detach(connection, 'abort', 0, { reason: message.reason, message: message.message });
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
      ...(this.transmitRestarts > 0 && { transmitRestarts: this.transmitRestarts }),
    };
  }

  async drainAndClose(timeoutMs: number): Promise<void> {
    const fallback = this.fallback?.drainAndClose(timeoutMs);
    for (const connection of this.connections.values()) this.detach(connection, 'shutdown', timeoutMs, null);
    const giveUp = Date.now() + timeoutMs + 1000;
    while (this.connections.size > 0 && Date.now() < giveUp) await sleep(10);
    await fallback;
  }

  dispose(): void {
    clearInterval(this.idleSweep);
    this.fallback?.dispose();
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
      tally: this.context.counters.workerTally(slot),
      limits: this.limits,
    });
  }

  private onHangup(id: number, error: HangupError): void {
    const connection = this.connections.get(id);
    if (!connection) return;
    // KCM reports a parser abort as EPIPE, which is also its word for a FIN, once a reply send
    // failed on the aborted socket: the parser's own record says which it was.
    const refusal = this.refusal(connection);
    if (refusal) return this.detach(connection, 'abort', 0, refusal);
    if (PEER_CLOSED.has(error.code)) {
      connection.peerClosed = true;
      return this.finish(connection, Date.now() + this.context.options.deadlineMs);
    }
    // EBADF: libuv's word for POLLERR when SO_ERROR was already empty and TCP's state shows no
    // FIN or reset either (hangup_watch.cc): a worker's reply send took the socket's error first
    // (a parser abort, say); that worker reports the reason.
    const unexplained = error.code === 'EBADF';
    this.detach(connection, 'abort', 0, { reason: PARSER_ERROR_REASONS[error.code] ?? 'socket_error', message: error.message, unexplained });
  }

  /**
   * The peer closed its side: the workers answer what it sent, then detach. The hangup notice
   * can overtake the kernel's parsing and delivery of the last frames, so the workers read
   * until they got as many as the parser counted (DetachMessage.expect). While whole frames
   * are still unparsed (the parser runs later, or waits for a full KCM socket) the count is
   * not final yet: ask again on the next timer tick, meanwhile the workers keep serving.
   */
  private finish(connection: KernelConnection, giveUpAt: number): void {
    if (connection.detaching || !this.connections.has(connection.id)) return;
    let total: ReturnType<typeof framesInAll>;
    try {
      total = framesInAll(connection.binding.framed());
    } catch (error) {
      this.context.options.logger.warn(`kmux: counting connection ${connection.id}'s frames: ${(error as Error).message}`);
      total = 'unknown';
    }
    if (total === 'pending') {
      // The parser refused a length after the FIN was reported (the hangup watch reports once):
      // no more frames come, and the close is counted under the parser's reason.
      const refusal = this.refusal(connection);
      if (refusal) return this.detach(connection, 'abort', 0, refusal);
    }
    if (total === 'pending' && Date.now() < giveUpAt) {
      setTimeout(() => this.finish(connection, giveUpAt), 1).unref();
      return;
    }
    const graceMs = Math.max(0, giveUpAt - Date.now());
    this.detach(connection, 'finish', graceMs, null, typeof total === 'number' ? total : undefined);
  }

  /** The close's cause when the parser refused a length (KCM's parser records it), else null. */
  private refusal(connection: KernelConnection): Cause | null {
    let refused: string | null;
    try {
      refused = connection.binding.parserError?.() ?? null;
    } catch (error) {
      this.context.options.logger.warn(`kmux: reading connection ${connection.id}'s parser state: ${(error as Error).message}`);
      return null;
    }
    return refused ? { reason: PARSER_ERROR_REASONS[refused] ?? 'protocol', message: `the parser refused a length: ${refused}` } : null;
  }

  /**
   * Asks every live worker to let go of the connection. The fds are released only once
   * each has answered `detached` (or died): closing them under a live watcher could make
   * it watch whatever reuses the fd number, so a worker stuck in a handler delays its
   * connections' release instead, and that is logged.
   */
  private detach(connection: KernelConnection, mode: DetachMessage['mode'], graceMs: number, cause: Cause | null, frames?: number): void {
    connection.cause ??= cause;
    if (connection.detaching && mode !== 'abort') return;
    connection.detaching = true;
    connection.draining = mode === 'abort' ? null : { mode, giveUpAt: Date.now() + graceMs, frames };
    const { workers } = this.context.options;
    for (let slot = 0; slot < workers; slot++) this.sendDetach(connection, slot, mode, graceMs, frames);
    if (connection.awaiting.size === 0) return this.releaseWhenSent(connection);
    connection.warnTimer ??= setTimeout(() => {
      const slots = [...connection.awaiting].join(', ');
      this.context.options.logger.warn(`kmux: connection ${connection.id} still waits for worker(s) ${slots} to detach`);
    }, graceMs + SLOW_DETACH_MS);
    connection.warnTimer.unref();
  }

  private sendDetach(connection: KernelConnection, slot: number, mode: DetachMessage['mode'], graceMs: number, frames: number | undefined): void {
    const message: DetachMessage = { type: 'detach', connection: connection.id, mode, graceMs, expect: this.expectation(frames, slot) };
    if (this.context.pool.control(slot, message)) connection.awaiting.add(slot);
  }

  /** What worker `slot` must read of a connection's `frames` before it detaches. */
  private expectation(frames: number | undefined, slot: number): FrameExpectation | undefined {
    if (frames === undefined) return undefined;
    if (this.path.spread === 'any') return { frames, scope: 'connection' };
    // Round robin from frame 0: slot s gets frames s, s + workers, ... below `frames`.
    const { workers } = this.context.options;
    return { frames: Math.max(0, Math.ceil((frames - slot) / workers)), scope: 'slot' };
  }

  private detachedFrom(connection: KernelConnection, slot: number): void {
    connection.awaiting.delete(slot);
    if (connection.detaching && connection.awaiting.size === 0) this.releaseWhenSent(connection);
  }

  /**
   * Releases the connection once the kernel has taken every reply its workers sent: a KCM
   * socket keeps a sent message until the TCP socket takes it, and unattaching drops it. A
   * connection closed for a cause is released at once: nobody waits for its replies. Checked
   * on the next timer tick while bytes remain, for up to UNSENT_WAIT_MS: past it the replies
   * are dropped and counted (`replies_unsent`), as for a peer that reads nothing.
   *
   * After the peer's FIN, KCM's state-change hook sets EPIPE on the TCP socket, and a reply
   * send that meets it stops the mux's transmit for good (kcm_abort_tx_psock): replies that
   * sit still for STALLED_MS while TCP holds none get a fresh transmit (restartTransmit), safe
   * here because every request was read.
   */
  private releaseWhenSent(connection: KernelConnection, giveUpAt = Date.now() + UNSENT_WAIT_MS, stall = { unsent: 0, since: 0 }): void {
    // A dead worker's replacement attached meanwhile (workerReady) and reads what KCM left on
    // its socket: closing the fds under its watcher would orphan those requests, and their
    // in-flight places with them. Its detach starts the wait again.
    if (!this.connections.has(connection.id) || connection.awaiting.size > 0) return;
    let unsent = 0;
    try {
      if (!connection.cause) unsent = connection.binding.unsent();
      const now = Date.now();
      if (unsent !== stall.unsent) Object.assign(stall, { unsent, since: now });
      else if (unsent > 0 && connection.peerClosed && now - stall.since >= STALLED_MS && connection.binding.restartTransmit?.()) {
        this.transmitRestarts++;
        Object.assign(stall, { since: now });
        giveUpAt = now + UNSENT_WAIT_MS;
      }
    } catch (error) {
      this.context.options.logger.warn(`kmux: connection ${connection.id}: ${(error as Error).message}`);
    }
    if (unsent > 0 && Date.now() < giveUpAt) {
      setTimeout(() => this.releaseWhenSent(connection, giveUpAt, stall), 1).unref();
      return;
    }
    if (unsent > 0) connection.cause = { reason: 'replies_unsent', message: `${unsent} reply bytes the kernel did not send` };
    this.release(connection);
  }

  private release(connection: KernelConnection): void {
    const { counters, options } = this.context;
    if (!this.connections.delete(connection.id)) return;
    if (connection.warnTimer) clearTimeout(connection.warnTimer);
    if (connection.cause?.reason === 'frame_too_large') connection.cause = this.unframedCause(connection) ?? connection.cause;
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
      if (cause.reason !== 'idle_timeout') options.logger.warn(`kmux: connection ${connection.id} (${connection.peer}) closed: ${cause.message}`);
    }
  }

  /**
   * A refused length that is the start of an unframed message (Thrift's default transport):
   * the kernel framing needs a length prefix, so such a client is refused, with its reason.
   */
  private unframedCause(connection: KernelConnection): Cause | null {
    const { unframed } = this.context.codec;
    if (!unframed) return null;
    let refused: number;
    try {
      refused = connection.binding.framed().refused;
    } catch {
      return null;
    }
    if (refused === 0 || !unframed.startsMessage(refused >>> 24)) return null;
    return { reason: 'unframed', message: `${unframed.refusal} (transport ${this.path.name})` };
  }

  private closeIdle(): void {
    const { idleTimeoutMs } = this.context.options;
    const now = Date.now();
    for (const connection of this.connections.values()) {
      if (connection.detaching || connection.counters.inFlight() > 0) continue;
      const last = Math.max(connection.acceptedAt, connection.counters.lastActivity(), connection.parsedAt);
      if (now - last >= idleTimeoutMs && !this.kernelHolds(connection, now)) {
        this.detach(connection, 'abort', 0, { reason: 'idle_timeout', message: 'idle timeout' });
      }
    }
  }

  /**
   * Whether requests wait in the kernel for a busy worker: frames the parser counted are
   * activity even before a worker reads them, as user space's reads are (a good client
   * must not be dropped as idle because the workers are slow). Asked only of connections
   * about to be dropped: one map lookup each.
   */
  private kernelHolds(connection: KernelConnection, now: number): boolean {
    let parsed: number;
    try {
      parsed = connection.binding.framed().parsed;
    } catch {
      return false;
    }
    if (parsed !== connection.parsedSeen) {
      connection.parsedSeen = parsed;
      connection.parsedAt = now;
      return true;
    }
    // The parser counts a frame at its header: one frame ahead of the workers may be a partial
    // one (the half-frame client, which idleTimeoutMs is for); two or more are whole ones waiting.
    return ((parsed - connection.counters.received()) | 0) >= 2;
  }
}
