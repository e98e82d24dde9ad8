import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TURN_MS, WorkerBudget, type BudgetClient, type ReadSwitch } from '../../src/scheduler/kernel-budget.js';
import { ConnectionCounters, ServerCounters } from '../../src/scheduler/shared-counters.js';
import type { KernelLimits } from '../../src/scheduler/worker-messages.js';

/** A connection that records what the budget does to it. Its requests are names. */
class FakeConnection implements BudgetClient {
  readonly held: string[] = [];
  readonly started: string[] = [];

  get hasHeld(): boolean {
    return this.held.length > 0;
  }

  startHeld(): boolean {
    const request = this.held.shift();
    if (request === undefined) return false;
    this.started.push(request);
    return true;
  }
}

/** The worker's reads, as its PollGroup switches them. */
class FakeReads implements ReadSwitch {
  reading = true;

  pause(): void {
    this.reading = false;
  }

  resume(): void {
    this.reading = true;
  }
}

interface Setup {
  readonly transport: 'kcm' | 'sockmap';
  readonly maxInFlight: number;
  readonly workerQueueDepth: number;
  readonly workers?: number;
  /** The server's in-flight count, when other workers' budgets share it. */
  readonly server?: ServerCounters;
}

/** One worker's budget over `connection` (its in-flight count shared as KernelConnection keeps it), as KernelConnection drives it. */
function worker({ transport, maxInFlight, workerQueueDepth, workers = 1, server = new ServerCounters() }: Setup) {
  const connection = new FakeConnection();
  const counters = ConnectionCounters.create(1, server);
  const reads = new FakeReads();
  const limits = { maxInFlight, workerQueueDepth } as KernelLimits;
  const budget = new WorkerBudget({ transport, workers, serverCounters: server.buffer, limits }, reads);
  return {
    budget,
    connection,
    reads,
    /** A request is read: true when admitted (then run at once or held), false when shed. */
    read(request: string): boolean {
      if (!budget.admit(counters.inFlightOf(0))) return false;
      counters.add(0, 1);
      if (budget.take()) connection.started.push(request);
      else {
        connection.held.push(request);
        budget.hold(connection);
      }
      return true;
    },
    /** A request's reply is on the socket: it no longer counts in flight. */
    finished(): void {
      counters.add(0, -1);
      budget.finished();
    },
  };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A running request is answered and its reply sent, as KernelConnection reports it. */
function done(w: ReturnType<typeof worker>): void {
  w.budget.answered();
  w.finished();
}

describe('WorkerBudget', () => {
  // The clock moves only when a test says so (a handler running): a slow test machine changes nothing.
  beforeEach(() => vi.useFakeTimers({ toFake: ['performance'] }));
  afterEach(() => vi.useRealTimers());

  it('runs up to workerQueueDepth at once and starts held requests as running ones finish', () => {
    const w = worker({ transport: 'sockmap', maxInFlight: 100, workerQueueDepth: 2 });
    const { connection, read } = w;
    expect([read('a'), read('b'), read('c')]).toEqual([true, true, true]);
    expect(connection.started).toEqual(['a', 'b']);
    done(w);
    expect(connection.started).toEqual(['a', 'b', 'c']);
  });

  it('starts a held request once a running one is answered, though its reply still waits to be sent (in flight until then)', () => {
    const { budget, connection, read, finished } = worker({ transport: 'sockmap', maxInFlight: 3, workerQueueDepth: 1 });
    expect([read('a'), read('b')]).toEqual([true, true]);
    // a is answered; its client reads slowly, so the reply is not out yet.
    budget.answered();
    expect(connection.started).toEqual(['a', 'b']);
    // a still holds its in-flight place: one more fits, then the limit sheds.
    expect([read('c'), read('d')]).toEqual([true, false]);
    finished();
    expect(read('e')).toBe(true);
  });

  it('goes back to the event loop after TURN_MS of synchronous handlers, so that it reads (and sheds) meanwhile', async () => {
    const w = worker({ transport: 'sockmap', maxInFlight: 100, workerQueueDepth: 32 });
    const { connection, read } = w;
    read('a');
    vi.advanceTimersByTime(TURN_MS); // a's handler ran that long
    done(w);
    // Far below the depth, but this turn's time is spent: held, counted as in flight.
    read('b');
    expect(connection.started).toEqual(['a']);
    expect(connection.held).toEqual(['b']);
    await nextTurn();
    expect(connection.started).toEqual(['a', 'b']);
  });

  it('sheds past maxInFlight, counted across workers, and past the worker\'s share of it', () => {
    const server = new ServerCounters();
    const one = worker({ transport: 'sockmap', maxInFlight: 5, workerQueueDepth: 1, workers: 2, server });
    const two = worker({ transport: 'sockmap', maxInFlight: 5, workerQueueDepth: 1, workers: 2, server });
    // Shares of 3: the fourth one read by a worker waits for nobody else, it is shed.
    expect([one.read('a'), one.read('b'), one.read('c'), one.read('d')]).toEqual([true, true, true, false]);
    expect([two.read('e'), two.read('f'), two.read('g')]).toEqual([true, true, false]);
    expect(server.inFlight).toBe(5);
    done(two);
    expect(one.read('h')).toBe(false);
    expect(two.read('i')).toBe(true);
  });

  it('past its share and maxInFlight, still admits a connection holding less than its fair share (share ÷ connections holding requests), never the flood', () => {
    const server = new ServerCounters();
    const budget = new WorkerBudget({ transport: 'sockmap', workers: 1, serverCounters: server.buffer, limits: { maxInFlight: 8, workerQueueDepth: 100 } as KernelLimits }, new FakeReads());
    const flood = ConnectionCounters.create(1, server);
    const polite = ConnectionCounters.create(1, server);
    const read = (connection: ConnectionCounters): boolean => {
      if (!budget.admit(connection.inFlightOf(0))) return false;
      connection.add(0, 1);
      return true;
    };
    expect(Array.from({ length: 9 }, () => read(flood))).toEqual([...new Array(8).fill(true), false]);
    // The polite connection gets in past maxInFlight, up to half of the share once both hold requests.
    expect(Array.from({ length: 5 }, () => read(polite))).toEqual([true, true, true, true, false]);
    expect(read(flood)).toBe(false);
    expect(server.inFlight).toBe(12);
    // Connections that hold nothing no longer count: the flood's share grows back.
    for (let i = 0; i < 4; i++) {
      polite.add(0, -1);
      budget.finished();
    }
    expect(server.fairShare(8)).toBe(8);
  });

  it('sockmap: never stops reading, whatever it holds (the kernel would queue without bound)', () => {
    const { connection, reads, read } = worker({ transport: 'sockmap', maxInFlight: 100, workerQueueDepth: 2 });
    for (const request of ['a', 'b', 'c', 'd']) read(request);
    expect(connection.held).toEqual(['c', 'd']);
    expect(reads.reading).toBe(true);
  });

  it('KCM: stops reading at workerQueueDepth while much of its share is free, reads again at half of the depth', () => {
    const w = worker({ transport: 'kcm', maxInFlight: 100, workerQueueDepth: 4 });
    const { reads, read } = w;
    for (const request of ['a', 'b', 'c']) read(request);
    expect(reads.reading).toBe(true);
    read('d');
    expect(reads.reading).toBe(false);
    done(w);
    expect(reads.reading).toBe(false);
    done(w);
    expect(reads.reading).toBe(true);
  });

  it('KCM: reads on at its depth once less than a depth of its share is left, to shed the backlog rather than leave it in the kernel', () => {
    const w = worker({ transport: 'kcm', maxInFlight: 8, workerQueueDepth: 4 });
    const { connection, reads, read } = w;
    for (const request of ['a', 'b', 'c', 'd']) read(request);
    // At its depth with half of its share free: the kernel may give the backlog to another worker.
    expect(reads.reading).toBe(false);
    read('e'); // the rest of the batch it was reading
    expect(reads.reading).toBe(true);
    expect(['f', 'g', 'h', 'i'].map((request) => read(request))).toEqual([true, true, true, false]);

    for (let i = 0; i < 4; i++) done(w);
    expect(connection.started).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    // At its depth again, with a depth of its share free: it leaves the backlog to the kernel.
    expect(reads.reading).toBe(false);
  });
});
