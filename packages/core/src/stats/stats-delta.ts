import { Histogram, type HistogramData } from './histogram.js';
import { MAX_TRACKED_METHODS, OTHER_METHODS, type Outcome } from './server-stats.js';

/**
 * What a worker on a kernel transport counted since its last report. Workers read and
 * answer requests themselves there, so they count them; the main thread merges the deltas
 * into its ServerStats, which stays the single source of server.stats() and metrics().
 */
export interface WorkerStatsDelta {
  readonly received: number;
  /** Late results dropped (the request had been answered with deadline_exceeded, or its connection went away). */
  readonly dropped: number;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly methods: Readonly<Record<string, MethodDelta>>;
  /** Requests the worker took on, and finished (answered or dropped). */
  readonly started: number;
  readonly completed: number;
  /** Requests in flight in the worker when the delta was taken (absolute, not a delta). */
  readonly inFlight: number;
}

export interface MethodDelta {
  readonly calls: number;
  readonly failures: number;
  readonly latencyUs: HistogramData;
}

interface MethodCounters {
  calls: number;
  failures: number;
  readonly latencyUs: Histogram;
}

/** The worker-side recorder: counts into fresh maps, handed over whole by take(). */
export class WorkerStatsRecorder {
  private received = 0;
  private dropped = 0;
  private started = 0;
  private completed = 0;
  private outcomes = new Map<Outcome, number>();
  private methods = new Map<string, MethodCounters>();

  frameReceived(): void {
    this.received++;
  }

  requestStarted(): void {
    this.started++;
  }

  /** A request was answered with `outcome` after `latencyUs`; `ran` when the worker had taken it on. */
  requestDone(method: string, outcome: Outcome, latencyUs: number, ran: boolean): void {
    if (ran) this.completed++;
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    if (!this.methods.has(method) && this.methods.size >= MAX_TRACKED_METHODS) method = OTHER_METHODS;
    let counters = this.methods.get(method);
    if (!counters) {
      counters = { calls: 0, failures: 0, latencyUs: new Histogram() };
      this.methods.set(method, counters);
    }
    counters.calls++;
    if (outcome !== 'ok') counters.failures++;
    counters.latencyUs.record(latencyUs);
  }

  /** A result came after its request had been answered or its connection detached. */
  resultDropped(): void {
    this.dropped++;
    this.completed++;
  }

  /** The counts since the last take(), or null when nothing happened. */
  take(inFlight: number): WorkerStatsDelta | null {
    if (this.received === 0 && this.started === 0 && this.completed === 0 && this.outcomes.size === 0 && this.dropped === 0) {
      return null;
    }
    const delta: WorkerStatsDelta = {
      received: this.received,
      dropped: this.dropped,
      outcomes: Object.fromEntries(this.outcomes),
      methods: Object.fromEntries(
        [...this.methods].map(([name, m]) => [name, { calls: m.calls, failures: m.failures, latencyUs: m.latencyUs.toData() }]),
      ),
      started: this.started,
      completed: this.completed,
      inFlight,
    };
    this.received = this.dropped = this.started = this.completed = 0;
    this.outcomes = new Map();
    this.methods = new Map();
    return delta;
  }
}
