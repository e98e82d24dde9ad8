import { MethodSeries } from './method-series.js';
import type { Outcome } from './outcome.js';
import { MethodTally, type WorkerTally } from './worker-tally.js';

/**
 * A worker's recorder on a kernel transport, where workers read and answer requests
 * themselves, so they count them: into its slot's WorkerTally, and per method into
 * MethodTallies, both in memory the main thread reads (worker-tally.ts).
 */
export class WorkerStatsRecorder {
  private readonly methods = new Map<string, MethodTally>();
  private readonly series = new MethodSeries();

  constructor(
    private readonly tally: WorkerTally,
    /** The service's methods (WorkerCodec.methods); undefined without an IDL. */
    declaredMethods: readonly string[] | undefined,
    /** Hands a new method's tally to the main thread (the worker posts it at once). */
    private readonly newMethod: (name: string, buffer: SharedArrayBuffer) => void,
  ) {
    this.series.declare(declaredMethods);
  }

  frameReceived(): void {
    this.tally.frameReceived();
  }

  requestStarted(): void {
    this.tally.requestStarted();
  }

  /**
   * A request was answered with `outcome` after `latencyUs`; `completed` when the worker is
   * done with it: its result is in, or it had not started (it never will).
   */
  requestDone(method: string, outcome: Outcome, latencyUs: number, completed: boolean): void {
    this.tally.requestDone(outcome, completed);
    this.methodTally(method).record(outcome, latencyUs);
  }

  /** A result came after its request had been answered or its connection detached. */
  resultDropped(): void {
    this.tally.resultDropped();
  }

  private methodTally(method: string): MethodTally {
    const series = this.series.name(method, this.methods);
    let tally = this.methods.get(series);
    if (!tally) {
      tally = new MethodTally();
      this.methods.set(series, tally);
      this.newMethod(series, tally.buffer);
    }
    return tally;
  }
}
