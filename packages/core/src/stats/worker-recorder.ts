import { MAX_TRACKED_METHODS, OTHER_METHODS, type Outcome } from './server-stats.js';
import { MethodTally, type WorkerTally } from './worker-tally.js';

/**
 * A worker's recorder on a kernel transport, where workers read and answer requests
 * themselves, so they count them: into its slot's WorkerTally, and per method into
 * MethodTallies, both in memory the main thread reads (worker-tally.ts).
 */
export class WorkerStatsRecorder {
  private readonly methods = new Map<string, MethodTally>();

  constructor(
    private readonly tally: WorkerTally,
    /** Hands a new method's tally to the main thread (the worker posts it at once). */
    private readonly newMethod: (name: string, buffer: SharedArrayBuffer) => void,
  ) {}

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
    this.methodTally(method).record(outcome === 'ok', latencyUs);
  }

  /** A result came after its request had been answered or its connection detached. */
  resultDropped(): void {
    this.tally.resultDropped();
  }

  private methodTally(method: string): MethodTally {
    // Method names come from clients: cap how many get their own tally.
    if (!this.methods.has(method) && this.methods.size >= MAX_TRACKED_METHODS) method = OTHER_METHODS;
    let tally = this.methods.get(method);
    if (!tally) {
      tally = new MethodTally();
      this.methods.set(method, tally);
      this.newMethod(method, tally.buffer);
    }
    return tally;
  }
}
