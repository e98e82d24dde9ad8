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
 * so a sockmap worker always reads. A KCM worker stops reading a connection (parks it) while
 * the connection has requests held here, and reads it again once they have all started: its
 * backlog stays in the kernel, in its own KCM sockets (kmux gives every connection a mux of
 * its own, so they hold no one else's messages), which then hand it to the other workers and
 * finally close that connection's TCP window. A connection holding nothing here is always
 * read, so a well-behaved client's request is read at once beside a flood and waits only for
 * its turn, one held request of each other connection (before, the worker stopped reading all
 * its connections when full, and the client's request waited in the kernel until the worker had
 * worked through a batch of every flooder). But not once less than a depth is left of the
 * worker's share: it could take on little of that backlog anyway, so it reads everything and
 * sheds the rest at once, rather than let it age in its KCM sockets, unbounded in time and
 * past its deadline. So on KCM overload is shed, as on the other transports, when maxInFlight
 * is about workers × workerQueueDepth or less; with more, a flooding connection's backlog
 * waits in the kernel (backpressure into TCP) instead. Parking is a flag (PollGroup), an
 * epoll_ctl only when something arrives meanwhile.
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
  /** Stops (true) or resumes reading the connection from the kernel (KCM). */
  park(parked: boolean): void;
}

export class WorkerBudget {
  private readonly depth: number;
  private readonly maxInFlight: number;
  /** This worker's part of maxInFlight. */
  private readonly share: number;
  /** The server's requests in flight and connections holding any, counted by all its workers. */
  readonly server: ServerCounters;
  /** KCM: a connection's backlog may wait in the kernel. sockmap: never. */
  private readonly canPark: boolean;
  /** Requests admitted and not finished. */
  private admitted = 0;
  private running = 0;
  /** Less than a depth of the share is left: every connection is read, and its excess shed. */
  private readingAll = false;
  private draining = false;
  /** When the current turn's starts must stop (performance.now() ms); 0 before a turn's first start. */
  private turnEndsAt = 0;
  /** Connections with held requests, in the order they get their next turn; on KCM parked unless readingAll. */
  private readonly waiting = new Set<BudgetClient>();

  /** Made from any of the worker's attach messages: the limits and counters are the server's. */
  constructor(attach: Pick<AttachMessage, 'transport' | 'workers' | 'serverCounters' | 'limits'>) {
    const { maxInFlight, workerQueueDepth } = attach.limits;
    this.depth = workerQueueDepth;
    this.maxInFlight = maxInFlight;
    this.share = Math.ceil(maxInFlight / attach.workers);
    this.server = new ServerCounters(attach.serverCounters);
    this.canPark = attach.transport === 'kcm';
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
    if (!this.waiting.has(client)) {
      this.waiting.add(client);
      this.park(client, true);
    }
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
        else this.park(client, false);
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

  private park(client: BudgetClient, parked: boolean): void {
    if (this.canPark) client.park(parked && !this.readingAll);
  }

  private update(): void {
    if (!this.canPark) return;
    const readingAll = this.admitted > this.share - this.depth;
    if (readingAll === this.readingAll) return;
    this.readingAll = readingAll;
    for (const client of this.waiting) client.park(!readingAll);
  }
}
