import { Histogram, type HistogramData } from './histogram.js';
import { MAX_TRACKED_METHODS, OTHER_METHODS, type Outcome } from './server-stats.js';
import type { WorkerTally } from './worker-tally.js';

/**
 * What a worker on a kernel transport reports now and then: the per-method counts and
 * latencies since its last report, which the main thread merges into its ServerStats. Its
 * exact request counts are not in here: they go to the worker's WorkerTally as they happen.
 */
export interface WorkerStatsDelta {
  readonly methods: Readonly<Record<string, MethodDelta>>;
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

/**
 * The worker-side recorder: counts into the shared tally, which the main thread reads at
 * once, and per method into fresh maps, handed over whole by take(). Workers read and answer
 * requests themselves on kernel transports, so they count them.
 */
export class WorkerStatsRecorder {
  private methods = new Map<string, MethodCounters>();
  private reportedInFlight = 0;

  constructor(private readonly tally: WorkerTally) {}

  frameReceived(): void {
    this.tally.frameReceived();
  }

  requestStarted(): void {
    this.tally.requestStarted();
  }

  /** A request was answered with `outcome` after `latencyUs`; `ran` when the worker had taken it on. */
  requestDone(method: string, outcome: Outcome, latencyUs: number, ran: boolean): void {
    this.tally.requestDone(outcome, ran);
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
    this.tally.resultDropped();
  }

  /** The per-method counts since the last take(), or null when there are none and `inFlight` is as last reported. */
  take(inFlight: number): WorkerStatsDelta | null {
    if (this.methods.size === 0 && inFlight === this.reportedInFlight) return null;
    const delta: WorkerStatsDelta = {
      methods: Object.fromEntries(
        [...this.methods].map(([name, m]) => [name, { calls: m.calls, failures: m.failures, latencyUs: m.latencyUs.toData() }]),
      ),
      inFlight,
    };
    this.methods = new Map();
    this.reportedInFlight = inFlight;
    return delta;
  }
}
