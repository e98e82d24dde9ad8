/**
 * What each worker's thread is doing, in memory shared with the workers:
 * - when its current synchronous call started: a worker stamps the time as it starts a call
 *   and clears it when its batch is done. The dispatcher reads it to tell a worker that has
 *   just started a call (it may take one more request) from one stuck in a long call (it
 *   takes none). Times are performance.timeOrigin + performance.now() in ms, comparable
 *   across threads.
 * - whether its heap is in a GC pause (set by @kmux/native's watchGcPauses from inside V8):
 *   a worker idle between calls can still be unable to start one for the few ms of a
 *   scavenge, so the dispatcher prefers one that is not.
 */
export class WorkerClocks {
  private readonly starts: Float64Array;
  /** One Int32 per slot: 1 during a GC pause. */
  readonly gcPauses: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    const slots = buffer.byteLength / 12;
    this.starts = new Float64Array(buffer, 0, slots);
    this.gcPauses = new Int32Array(buffer, 8 * slots, slots);
  }

  static create(slots: number): WorkerClocks {
    return new WorkerClocks(new SharedArrayBuffer(12 * slots));
  }

  static now(): number {
    return performance.timeOrigin + performance.now();
  }

  callStarted(slot: number): void {
    this.starts[slot] = WorkerClocks.now();
  }

  idle(slot: number): void {
    this.starts[slot] = 0;
  }

  /** How long (µs) the worker's current call has run; 0 when it runs none. */
  runningUs(slot: number, now: number): number {
    const started = this.starts[slot]!;
    return started === 0 ? 0 : (now - started) * 1000;
  }

  /** Whether the worker's thread is in a GC pause right now. */
  inGcPause(slot: number): boolean {
    return Atomics.load(this.gcPauses, slot) === 1;
  }
}
