/**
 * How a kernel transport lets go of a connection: on a hangup, a worker's report, a worker's
 * death, the idle sweep or shutdown, every worker is asked to detach; once each has answered
 * `detached` (or died) and the kernel has taken the replies already sent, the kernel objects
 * and the socket are released, and the cause is counted and logged once.
 */
import { framesInAll, type HangupError } from '@kmux/native';
import { PARSER_ERROR_REASONS, type DetachMessage, type FrameExpectation } from '../scheduler/worker-messages.js';
import type { AttachedConnection, Cause } from './attached-connection.js';
import type { KernelPath } from './kernel-path.js';
import type { TransportContext } from './transport.js';
import { AGED_LINGER_MS, AGED_REFUSALS_MAX_MS, QUIET_BEFORE_END_MS } from '../server/connection-age.js';

/** Hangup codes that mean the peer closed its side cleanly: replies may still go out. */
const PEER_CLOSED = new Set(['EOF', 'EPIPE']);
/** A detach that takes this much longer than its grace is logged (see detach()). */
const SLOW_DETACH_MS = 5000;
/** How long a clean close waits for the kernel to take the replies already sent (releaseWhenSent). */
const UNSENT_WAIT_MS = 1000;
/** How long replies may sit unsent, with TCP idle, before the transmit counts as stopped. */
const STALLED_MS = 20;

export class KernelTeardown {
  /** KCM transmits stopped at the peer's FIN and restarted (see releaseWhenSent). */
  transmitRestarts = 0;
  /** ... and those that could not be restarted: their connections closed at once. */
  failedTransmitRestarts = 0;

  constructor(
    private readonly context: TransportContext,
    private readonly path: KernelPath,
    /** The transport's live connections: release() removes from it. */
    private readonly connections: Map<number, AttachedConnection>,
  ) {}

  onHangup(connection: AttachedConnection, error: HangupError): void {
    // KCM reports a parser abort as EPIPE, which is also its word for a FIN, once a reply send
    // failed on the aborted socket: the parser's own record says which it was.
    const refusal = this.refusal(connection);
    if (refusal) return this.detach(connection, 'abort', 0, refusal);
    // A reset with nothing in flight: the peer's way to close (HAProxy's health checks), no error.
    if (error.code === 'ECONNRESET' && connection.counters.inFlight() === 0) return this.detach(connection, 'abort', 0, null);
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
   * Asks every live worker to let go of the connection. The fds are released only once
   * each has answered `detached` (or died): closing them under a live watcher could make
   * it watch whatever reuses the fd number, so a worker stuck in a handler delays its
   * connections' release instead, and that is logged.
   */
  detach(connection: AttachedConnection, mode: DetachMessage['mode'], graceMs: number, cause: Cause | null, frames?: number): void {
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

  /**
   * The connection reached its maximum age: the workers refuse its new requests unrun, and once
   * nothing is in flight and the peer is quiet (connection-age.ts) they are asked to detach;
   * then release() sends the FIN after the replies.
   */
  age(connection: AttachedConnection): void {
    connection.ageTimer = null;
    if (connection.detaching) return;
    connection.aged = true;
    for (let slot = 0; slot < this.context.options.workers; slot++) this.sendAge(connection, slot);
    this.endAgedWhenQuiet(connection, Date.now());
  }

  /** Tells worker `slot` to refuse the aged connection's new requests (it answers no `detached` to this). */
  sendAge(connection: AttachedConnection, slot: number): void {
    this.context.pool.control(slot, { type: 'detach', connection: connection.id, mode: 'age', graceMs: 0 });
  }

  private endAgedWhenQuiet(connection: AttachedConnection, agedAt: number): void {
    if (connection.detaching || !this.connections.has(connection.id)) return;
    const now = Date.now();
    const endAt = Math.min(connection.counters.lastActivity() + QUIET_BEFORE_END_MS, agedAt + AGED_REFUSALS_MAX_MS);
    if (connection.counters.inFlight() === 0 && now >= endAt) return this.detach(connection, 'shutdown', this.context.options.deadlineMs, null);
    connection.ageTimer = setTimeout(() => this.endAgedWhenQuiet(connection, agedAt), Math.max(10, endAt - now)).unref();
  }

  sendDetach(connection: AttachedConnection, slot: number, mode: DetachMessage['mode'], graceMs: number, frames: number | undefined): void {
    const message: DetachMessage = { type: 'detach', connection: connection.id, mode, graceMs, expect: this.expectation(frames, slot) };
    if (this.context.pool.control(slot, message)) connection.awaiting.add(slot);
  }

  detachedFrom(connection: AttachedConnection, slot: number): void {
    connection.awaiting.delete(slot);
    if (connection.detaching && connection.awaiting.size === 0) this.releaseWhenSent(connection);
  }

  release(connection: AttachedConnection): void {
    const { counters, options } = this.context;
    if (!this.connections.delete(connection.id)) return;
    if (connection.warnTimer) clearTimeout(connection.warnTimer);
    if (connection.ageTimer) clearTimeout(connection.ageTimer);
    if (connection.cause?.reason === 'frame_too_large') connection.cause = this.unframedCause(connection) ?? connection.cause;
    connection.cause = connection.binding.closeCause?.() ?? connection.cause;
    try {
      connection.binding.close();
    } catch (error) {
      options.logger.warn(`kmux: releasing ${this.path.name} connection ${connection.id}: ${(error as Error).message}`);
    }
    if (connection.aged && !connection.cause) this.endGracefully(connection.socket);
    // With requests still unread on the socket this is a reset, so the peer learns at once.
    else connection.socket.destroy();
    counters.openConnections--;
    if (connection.aged) counters.agedConnections++;
    const { cause } = connection;
    if (cause) {
      counters.connectionError(cause.reason);
      if (cause.reason !== 'idle_timeout') options.logger.warn(`kmux: connection ${connection.id} (${connection.peer}) closed: ${cause.message}`);
    }
  }

  /**
   * An aged connection, its kernel objects released and every reply sent: the FIN goes out, and
   * what the peer still sends is read and discarded until it closes too (closing with unread
   * bytes would reset the connection, and a reset can drop replies still in flight to it).
   */
  private endGracefully(socket: AttachedConnection['socket']): void {
    const linger = setTimeout(() => socket.destroy(), AGED_LINGER_MS).unref();
    socket.once('close', () => clearTimeout(linger));
    socket.end();
    socket.resume();
  }

  /**
   * A refused length that is the start of an unframed message (Thrift's default transport):
   * the kernel framing needs a length prefix, so such a client is refused, with its reason.
   */
  private unframedCause(connection: AttachedConnection): Cause | null {
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

  /**
   * The peer closed its side: the workers answer what it sent, then detach. The hangup notice
   * can overtake the kernel's parsing and delivery of the last frames, so the workers read
   * until they got as many as the parser counted (DetachMessage.expect). While whole frames
   * are still unparsed (the parser runs later, or waits for a full KCM socket) the count is
   * not final yet: ask again on the next timer tick, meanwhile the workers keep serving.
   */
  private finish(connection: AttachedConnection, giveUpAt: number): void {
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
  private refusal(connection: AttachedConnection): Cause | null {
    let refused: string | null;
    try {
      refused = connection.binding.parserError?.() ?? null;
    } catch (error) {
      this.context.options.logger.warn(`kmux: reading connection ${connection.id}'s parser state: ${(error as Error).message}`);
      return null;
    }
    return refused ? { reason: PARSER_ERROR_REASONS[refused] ?? 'protocol', message: `the parser refused a length: ${refused}` } : null;
  }

  /** What worker `slot` must read of a connection's `frames` before it detaches. */
  private expectation(frames: number | undefined, slot: number): FrameExpectation | undefined {
    if (frames === undefined) return undefined;
    if (this.path.spread === 'any') return { frames, scope: 'connection' };
    // Round robin from frame 0: slot s gets frames s, s + workers, ... below `frames`.
    const { workers } = this.context.options;
    return { frames: Math.max(0, Math.ceil((frames - slot) / workers)), scope: 'slot' };
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
   * here because every request was read. A restart that fails (the peer reset the socket
   * too) ends the wait at once: nothing can send those replies any more.
   */
  private releaseWhenSent(connection: AttachedConnection, giveUpAt = Date.now() + UNSENT_WAIT_MS, stall = { unsent: 0, since: 0 }): void {
    // A dead worker's replacement attached meanwhile (workerReady) and reads what KCM left on
    // its socket: closing the fds under its watcher would orphan those requests, and their
    // in-flight places with them. Its detach starts the wait again.
    if (!this.connections.has(connection.id) || connection.awaiting.size > 0) return;
    let unsent = 0;
    try {
      if (!connection.cause) unsent = connection.binding.unsent();
    } catch (error) {
      this.context.options.logger.warn(`kmux: connection ${connection.id}: ${(error as Error).message}`);
    }
    const now = Date.now();
    if (unsent !== stall.unsent) Object.assign(stall, { unsent, since: now });
    else if (unsent > 0 && connection.peerClosed && now - stall.since >= STALLED_MS) {
      try {
        if (connection.binding.restartTransmit?.()) {
          this.transmitRestarts++;
          Object.assign(stall, { since: now });
          giveUpAt = now + UNSENT_WAIT_MS;
        }
      } catch (error) {
        this.failedTransmitRestarts++;
        connection.cause = { reason: 'replies_unsent', message: `${unsent} reply bytes unsent, the transmit could not be restarted: ${(error as Error).message}` };
        return this.release(connection);
      }
    }
    if (unsent > 0 && Date.now() < giveUpAt) {
      setTimeout(() => this.releaseWhenSent(connection, giveUpAt, stall), 1).unref();
      return;
    }
    if (unsent > 0) connection.cause = { reason: 'replies_unsent', message: `${unsent} reply bytes the kernel did not send` };
    this.release(connection);
  }
}
