/**
 * What one worker takes on, on a kernel transport: its share of the server's requests in
 * flight, and how many of those it runs at once.
 *
 * Admission. A request read is admitted while the server has fewer than `maxInFlight` in
 * flight (counted across workers in shared memory) and this worker fewer than its share,
 * maxInFlight / workers: it cannot hand a request it read to another worker, so more would
 * only wait behind its own while the others shed. Past either, it is still admitted if its
 * connection holds less than its fair share of the worker's share here: the worker's share ÷
 * the connections holding requests (counted by all workers in shared memory). So a flood
 * gets only its own excess refused, never a connection that holds little (as on user space
 * and native), and a worker still takes at most twice its share. Else: answered overloaded at once.
 *
 * Running. At most `workerQueueDepth` run at once, over all the worker's connections; one
 * admitted past that is held, in its connection, until a running one is answered (its reply
 * need not be sent yet: a client that reads slowly holds in-flight places, not the worker). Held
 * requests start first come, first served, one connection after another. Requests also
 * start back to back for at most TURN_MS of an event-loop turn: what comes after is held
 * and starts in the next turn, so a worker whose handlers are synchronous still goes back
 * to its event loop every TURN_MS to read. Its backlog is then read, counted and shed past
 * the limits, instead of waiting uncounted in the kernel.
 *
 * Reading. sockmap's redirect has no backpressure (the kernel would queue without bound),
 * so a sockmap worker always reads. A KCM worker stops reading once it is full (at its
 * depth, or holding) and reads again when half of its depth is free: the backlog stays in
 * the kernel, which hands further messages to the other workers' KCM sockets (and closes
 * the TCP window when every worker is full). But not once less than a depth is left of its
 * share: it could take on little of that backlog anyway, so it reads it and sheds the rest
 * at once, rather than let it age in its KCM sockets, unbounded in time and past its
 * deadline. So on KCM overload is shed, as on the other transports, when maxInFlight is
 * about workers × workerQueueDepth or less; with more, a full worker's backlog waits in the
 * kernel (backpressure into TCP) instead. Reading stops and starts for all the worker's
 * connections at once (a ReadSwitch: its PollGroup), at a flag's cost, however many there are.
 */
import { ServerCounters } from './shared-counters.js';
import type { AttachMessage } from './worker-messages.js';

/** How long requests start back to back before the worker yields to its event loop to read. */
export const TURN_MS = 1;

/** A connection as the budget sees it. */
export interface BudgetClient {
  /** Starts the oldest held request that is still unanswered; false when there is none. */
  startHeld(): boolean;
  readonly hasHeld: boolean;
}

/** Stops and resumes reading from the kernel on all the worker's connections. */
export interface ReadSwitch {
  pause(): void;
  resume(): void;
}

export class WorkerBudget {
  private readonly depth: number;
  private readonly maxInFlight: number;
  /** This worker's part of maxInFlight. */
  private readonly share: number;
  /** The server's requests in flight and connections holding any, counted by all its workers. */
  readonly server: ServerCounters;
  /** KCM: a full worker may leave its backlog in the kernel. sockmap: never. */
  private readonly canPause: boolean;
  /** Requests admitted and not finished. */
  private admitted = 0;
  private running = 0;
  private reading = true;
  private draining = false;
  /** When the current turn's starts must stop (performance.now() ms); 0 before a turn's first start. */
  private turnEndsAt = 0;
  /** Connections with held requests, in the order they get their next turn. */
  private readonly waiting = new Set<BudgetClient>();

  /** Made from any of the worker's attach messages: the limits and counters are the server's. */
  constructor(
    attach: Pick<AttachMessage, 'transport' | 'workers' | 'serverCounters' | 'limits'>,
    private readonly reads: ReadSwitch,
  ) {
    const { maxInFlight, workerQueueDepth } = attach.limits;
    this.depth = workerQueueDepth;
    this.maxInFlight = maxInFlight;
    this.share = Math.ceil(maxInFlight / attach.workers);
    this.server = new ServerCounters(attach.serverCounters);
    this.canPause = attach.transport === 'kcm';
  }

  /**
   * A request was read on a connection holding `connectionInFlight` requests in this worker:
   * takes one of the server's in-flight places; false past this worker's share or maxInFlight,
   * unless the connection holds less than its fair share of the worker's.
   */
  admit(connectionInFlight: number): boolean {
    if (this.admitted < this.share && this.server.tryAcquire(this.maxInFlight)) {
      this.admitted++;
      return true;
    }
    if (connectionInFlight >= this.server.fairShare(this.share)) return false;
    this.server.acquire();
    this.admitted++;
    return true;
  }

  /** An admitted request may run now (it then counts as running until answered()); else hold() it. */
  take(): boolean {
    if (this.running >= this.depth || this.waiting.size > 0 || !this.turnHasTime()) return false;
    this.running++;
    this.update();
    return true;
  }

  /** `client` holds a request that take() refused. */
  hold(client: BudgetClient): void {
    this.waiting.add(client);
    this.update();
  }

  /**
   * A running request is answered (or dropped): another may run. Its reply may still wait to be
   * sent, to a client that reads slowly, but that must not stall the worker's other connections.
   */
  answered(): void {
    this.running--;
    this.drain();
  }

  /** An admitted request's reply is on the socket, or never will be: it no longer counts in flight. */
  finished(): void {
    this.admitted--;
    this.server.release();
    this.update();
  }

  /** The connection is gone, with whatever it held. */
  forget(client: BudgetClient): void {
    this.waiting.delete(client);
    this.update();
  }

  private drain(): void {
    // A held request that is answered at once calls answered() from inside this loop.
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.running < this.depth && this.waiting.size > 0 && this.turnHasTime()) {
        const client = this.waiting.values().next().value as BudgetClient;
        this.waiting.delete(client);
        this.running++;
        if (!client.startHeld()) this.running--;
        if (client.hasHeld) this.waiting.add(client);
      }
    } finally {
      this.draining = false;
    }
    this.update();
  }

  /** Whether this turn may start another request; its first start schedules the next turn's drain. */
  private turnHasTime(): boolean {
    const now = performance.now();
    if (this.turnEndsAt === 0) {
      this.turnEndsAt = now + TURN_MS;
      setImmediate(this.nextTurn);
    }
    return now < this.turnEndsAt;
  }

  private readonly nextTurn = (): void => {
    this.turnEndsAt = 0;
    this.drain();
  };

  private update(): void {
    if (!this.canPause) return;
    const full = this.running >= this.depth || this.waiting.size > 0;
    const roomy = this.running <= this.depth >> 1 && this.waiting.size === 0;
    const shareNearlyTaken = this.admitted > this.share - this.depth;
    const read = shareNearlyTaken || (this.reading ? !full : roomy);
    if (read === this.reading) return;
    this.reading = read;
    if (read) this.reads.resume();
    else this.reads.pause();
  }
}
