import { ConnectionCounters, type ServerCounters } from '../scheduler/shared-counters.js';
import type { DetachMessage } from '../scheduler/worker-messages.js';
import type { PlaintextSocket } from '../tls/server-tls.js';
import type { KernelBinding } from './kernel-path.js';

/** Why a connection closes, as counted (`reason`) and logged (`message`). */
export interface Cause {
  readonly reason: string;
  readonly message: string;
  /** A hangup that could not say why: a worker's report of the same close replaces it. */
  readonly unexplained?: boolean;
}

/** A connection under kernel framing, as the main thread keeps it: its kernel objects and its teardown's state. */
export interface AttachedConnection {
  readonly id: number;
  /** A net.Socket, or the KtlsSocket that owns a kTLS connection's fd (native). */
  readonly socket: PlaintextSocket;
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
  /** The peer sent its FIN: KCM may have stopped transmitting (see KernelTeardown.releaseWhenSent). */
  peerClosed: boolean;
  warnTimer: NodeJS.Timeout | null;
  /** Ends it at its maximum age (see KernelTeardown.age); null when off or fired. */
  ageTimer: NodeJS.Timeout | null;
  /** It reached its maximum age: released with a FIN rather than a reset. */
  aged: boolean;
  /** The parser's frame count when the idle sweep last looked, and when it last saw it move. */
  parsedSeen: number;
  parsedAt: number;
}

export function attachedConnection(id: number, socket: PlaintextSocket, binding: KernelBinding, workers: number, server: ServerCounters): AttachedConnection {
  return {
    id,
    socket,
    peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
    binding,
    counters: ConnectionCounters.create(workers, server),
    acceptedAt: Date.now(),
    detaching: false,
    draining: null,
    awaiting: new Set(),
    cause: null,
    peerClosed: false,
    warnTimer: null,
    ageTimer: null,
    aged: false,
    parsedSeen: 0,
    parsedAt: 0,
  };
}
