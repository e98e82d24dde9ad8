/**
 * Memory shared by the main thread and the workers of a kernel transport, so that limits
 * that span workers hold without a message round trip:
 *
 * - per connection (ConnectionCounters): the sockmap write lock, each worker's requests
 *   in flight on the connection (held until the reply is fully sent), and each worker's
 *   last activity (Date.now ms) for the idle timeout, and the frames all workers have read
 *   (a KCM connection's end waits for the count its parser gave, see DetachMessage.expect);
 * - per server (ServerCounters): requests in flight in all workers, for maxInFlight.
 */
const LOCK = 0;
/** Index of the frames-read word: after the lock and one in-flight word per worker. */
const receivedIndex = (workers: number): number => 1 + workers;

export class ConnectionCounters {
  private readonly ints: Int32Array;
  private readonly activity: Float64Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly workers: number,
  ) {
    this.ints = new Int32Array(buffer, 0, 2 + workers);
    this.activity = new Float64Array(buffer, activityOffset(workers), workers);
  }

  static create(workers: number): ConnectionCounters {
    return new ConnectionCounters(new SharedArrayBuffer(activityOffset(workers) + 8 * workers), workers);
  }

  /** The write lock word: 0 when free, else 1 + the slot of the worker mid-reply (sockmap). */
  get lock(): { readonly array: Int32Array; readonly index: number } {
    return { array: this.ints, index: LOCK };
  }

  add(slot: number, delta: number): void {
    Atomics.add(this.ints, 1 + slot, delta);
  }

  inFlightOf(slot: number): number {
    return Atomics.load(this.ints, 1 + slot);
  }

  inFlight(): number {
    let total = 0;
    for (let slot = 0; slot < this.workers; slot++) total += this.inFlightOf(slot);
    return total;
  }

  /** A worker died: what it held is gone. Returns how many requests that was. */
  resetSlot(slot: number): number {
    return Atomics.exchange(this.ints, 1 + slot, 0);
  }

  /** Counts frames a worker read, and wakes the workers waiting for the count (waitReceived). */
  addReceived(frames: number): void {
    Atomics.add(this.ints, receivedIndex(this.workers), frames);
    Atomics.notify(this.ints, receivedIndex(this.workers));
  }

  /** Frames all workers have read (mod 2^32, as the kernel's count). */
  received(): number {
    return Atomics.load(this.ints, receivedIndex(this.workers)) >>> 0;
  }

  /** Resolves once the frames-read count differs from `seen` (or wakeReceived is called). */
  waitReceived(seen: number): Promise<unknown> {
    const wait = Atomics.waitAsync(this.ints, receivedIndex(this.workers), seen | 0);
    return wait.async ? wait.value : Promise.resolve();
  }

  /** Releases every waitReceived (a waiter that stops waiting). */
  wakeReceived(): void {
    Atomics.notify(this.ints, receivedIndex(this.workers));
  }

  touch(slot: number, now: number): void {
    this.activity[slot] = now;
  }

  lastActivity(): number {
    let last = 0;
    for (let slot = 0; slot < this.workers; slot++) last = Math.max(last, this.activity[slot]!);
    return last;
  }
}

function activityOffset(workers: number): number {
  return Math.ceil((4 * (2 + workers)) / 8) * 8;
}

export class ServerCounters {
  private readonly ints: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.ints = new Int32Array(buffer);
  }

  /** Takes one in-flight slot unless `limit` are taken already. */
  tryAcquire(limit: number): boolean {
    if (Atomics.add(this.ints, 0, 1) < limit) return true;
    Atomics.sub(this.ints, 0, 1);
    return false;
  }

  release(count = 1): void {
    Atomics.sub(this.ints, 0, count);
  }

  get inFlight(): number {
    return Atomics.load(this.ints, 0);
  }
}
