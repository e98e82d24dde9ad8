/**
 * When each worker's current synchronous call started, in memory shared with the workers:
 * a worker stamps the time as it starts a call and clears it when its batch is done. The
 * dispatcher reads it to tell a worker that has just started a call (it may take one more
 * request) from one stuck in a long call (it takes none). Times are
 * performance.timeOrigin + performance.now() in ms, comparable across threads.
 */
export class WorkerClocks {
  private readonly starts: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.starts = new Float64Array(buffer);
  }

  static create(slots: number): WorkerClocks {
    return new WorkerClocks(new SharedArrayBuffer(8 * slots));
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
}
