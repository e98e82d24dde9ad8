/**
 * How many requests one worker runs at once on a kernel transport (`workerQueueDepth`),
 * across all its connections. A request read past the bound is held, in its connection,
 * until a running one is answered; held requests start first come, first served, one
 * connection after another.
 *
 * So that the held ones stay few, the worker stops reading once it is full and reads
 * again when half of its bound is free: on KCM the backlog then stays in the kernel,
 * which hands further messages to the other workers' KCM sockets (and closes the TCP
 * window when every worker is full). sockmap's redirect has no backpressure (the kernel
 * would queue without bound), so a sockmap worker keeps reading, and its held requests
 * are bounded by maxInFlightPerConnection / maxInFlight instead (past them: overloaded).
 */

/** A connection as the budget sees it. */
export interface BudgetClient {
  /** Starts the oldest held request that is still unanswered; false when there is none. */
  startHeld(): boolean;
  readonly hasHeld: boolean;
  /** Stop (false) or resume (true) reading from the kernel, where the transport allows it. */
  setReading(on: boolean): void;
}

export class WorkerBudget {
  private running = 0;
  private reading = true;
  private draining = false;
  /** Connections with held requests, in the order they get their next turn. */
  private readonly waiting = new Set<BudgetClient>();

  constructor(
    private readonly depth: number,
    private readonly clients: () => Iterable<BudgetClient>,
  ) {}

  get runningCount(): number {
    return this.running;
  }

  /** A request was read: true when it may run now (it then counts until done()). */
  take(): boolean {
    if (this.running >= this.depth || this.waiting.size > 0) return false;
    this.running++;
    this.update();
    return true;
  }

  /** `client` holds a request that take() refused. */
  hold(client: BudgetClient): void {
    this.waiting.add(client);
    this.update();
  }

  /** A request that take() (or a held start) admitted is answered. */
  done(): void {
    this.running--;
    this.drain();
  }

  /** The connection is gone, with whatever it held. */
  forget(client: BudgetClient): void {
    this.waiting.delete(client);
    this.update();
  }

  private drain(): void {
    // A held request that completes at once calls done() from inside this loop.
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.running < this.depth && this.waiting.size > 0) {
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

  private update(): void {
    const full = this.running >= this.depth || this.waiting.size > 0;
    const roomy = this.running <= this.depth >> 1 && this.waiting.size === 0;
    if (this.reading ? !full : !roomy) return;
    this.reading = !this.reading;
    for (const client of this.clients()) client.setReading(this.reading);
  }

  /** Whether a connection attached now should read. */
  get isReading(): boolean {
    return this.reading;
  }
}
