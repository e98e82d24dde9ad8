import { Histogram } from './histogram.js';
import type { Outcome } from './outcome.js';

/**
 * The request counts of the worker in one slot on a kernel transport, in memory it shares
 * with the main thread; MethodTally below does the same per method. The worker alone writes
 * them, as it counts; the main thread reads them for stats() and adds them to its own totals
 * once the worker has exited, so a killed worker's counts survive it up to its last request (a
 * report posted now and then would lose what came after the last one). Float64 words: one
 * writer's plain stores, exact up to 2^53, where an Int32 count would wrap in a long-lived server.
 */
const RECEIVED = 0;
const DROPPED = 1;
const STARTED = 2;
const COMPLETED = 3;
const FIRST_OUTCOME = 4;

/** A Record, so that the compiler catches an Outcome left out here. */
const OUTCOMES = Object.keys({
  ok: 0,
  exception: 0,
  failed: 0,
  frame_too_large: 0,
  protocol: 0,
  bad_request: 0,
  unknown_method: 0,
  overloaded: 0,
  deadline_exceeded: 0,
  worker_died: 0,
  handler: 0,
  shutting_down: 0,
  connection_closed: 0,
  transport_unavailable: 0,
} satisfies Record<Outcome, 0>) as Outcome[];
const OUTCOME_WORD = new Map(OUTCOMES.map((outcome, i) => [outcome, FIRST_OUTCOME + i]));
const WORDS = FIRST_OUTCOME + OUTCOMES.length;

export interface TallyCounts {
  /** Frames read. */
  readonly received: number;
  /** Late results dropped (the request had been answered with deadline_exceeded, or its connection went away). */
  readonly dropped: number;
  /**
   * Requests the worker took on, and those it is done with: its handler's result is in, or the
   * request was answered before it started (so it never will); started − completed are in flight.
   */
  readonly started: number;
  readonly completed: number;
  /** Requests answered, by outcome; only those with a count. */
  readonly outcomes: ReadonlyMap<Outcome, number>;
}

export class WorkerTally {
  private readonly words: Float64Array;

  constructor(readonly buffer = new SharedArrayBuffer(WORDS * Float64Array.BYTES_PER_ELEMENT)) {
    this.words = new Float64Array(buffer);
  }

  // Written by the worker.

  frameReceived(): void {
    this.words[RECEIVED]++;
  }

  requestStarted(): void {
    this.words[STARTED]++;
  }

  /** A request was answered with `outcome`; `completed` when the worker is done with it (see TallyCounts). */
  requestDone(outcome: Outcome, completed: boolean): void {
    if (completed) this.words[COMPLETED]++;
    this.words[OUTCOME_WORD.get(outcome)!]++;
  }

  /** A result came after its request had been answered or its connection detached. */
  resultDropped(): void {
    this.words[DROPPED]++;
    this.words[COMPLETED]++;
  }

  // Read by the main thread.

  read(): TallyCounts {
    const { words } = this;
    const outcomes = new Map<Outcome, number>();
    OUTCOMES.forEach((outcome, i) => {
      const count = words[FIRST_OUTCOME + i]!;
      if (count > 0) outcomes.set(outcome, count);
    });
    return { received: words[RECEIVED]!, dropped: words[DROPPED]!, started: words[STARTED]!, completed: words[COMPLETED]!, outcomes };
  }
}

/**
 * One method's calls, declared exceptions, failures and latencies in a worker on a kernel
 * transport: the worker makes one at the method's first call and posts its buffer to the main
 * thread, which reads it as it reads the WorkerTally. Its calls are its latency histogram's count.
 */
export class MethodTally {
  readonly latencyUs: Histogram;
  /** [exceptions, failures] */
  private readonly counts: Float64Array;

  constructor(readonly buffer = new SharedArrayBuffer((2 + Histogram.words()) * Float64Array.BYTES_PER_ELEMENT)) {
    this.counts = new Float64Array(buffer, 0, 2);
    this.latencyUs = new Histogram(undefined, new Float64Array(buffer, 2 * Float64Array.BYTES_PER_ELEMENT));
  }

  /** Written by the worker. */
  record(outcome: Outcome, latencyUs: number): void {
    if (outcome === 'exception') this.counts[0]++;
    else if (outcome !== 'ok') this.counts[1]++;
    this.latencyUs.record(latencyUs);
  }

  get exceptions(): number {
    return this.counts[0]!;
  }

  get failures(): number {
    return this.counts[1]!;
  }
}
