/**
 * Memory shared by the main thread and the workers of a kernel transport, so that limits
 * that span workers hold without a message round trip:
 *
 * - per connection (ConnectionCounters): the sockmap write lock, each worker's requests
 *   in flight on the connection (held until the reply is fully sent) and their total, each
 *   worker's last activity (Date.now ms) for the idle timeout, and the frames all workers have
 *   read (a KCM connection's end waits for the count its parser gave, see DetachMessage.expect);
 * - per server (ServerCounters): requests in flight in all workers, for maxInFlight, and the
 *   connections holding any, for each connection's fair share of it.
 */
const LOCK = 0;
/** Index of the frames-read word: after the lock and one in-flight word per worker. */
const receivedIndex = (workers: number): number => 1 + workers;
/** Index of the word counting the connection's requests in flight in all workers. */
const totalIndex = (workers: number): number => 2 + workers;
const WORDS = (workers: number): number => 3 + workers;

export class ConnectionCounters {
  private readonly ints: Int32Array;
  private readonly activity: Float64Array;

  /** `server`: the server's counters, which count this connection among those holding requests. */
  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly workers: number,
    private readonly server: ServerCounters,
  ) {
    this.ints = new Int32Array(buffer, 0, WORDS(workers));
    this.activity = new Float64Array(buffer, activityOffset(workers), workers);
  }

  static create(workers: number, server: ServerCounters): ConnectionCounters {
    return new ConnectionCounters(new SharedArrayBuffer(activityOffset(workers) + 8 * workers), workers, server);
  }

  /** The write lock word: 0 when free, else 1 + the slot of the worker mid-reply (sockmap). */
  get lock(): { readonly array: Int32Array; readonly index: number } {
    return { array: this.ints, index: LOCK };
  }

  /** Counts requests in flight on the connection in worker `slot`. */
  add(slot: number, delta: number): void {
    Atomics.add(this.ints, 1 + slot, delta);
    this.addTotal(delta);
  }

  /** The connection's requests in flight in worker `slot`. */
  inFlightOf(slot: number): number {
    return Atomics.load(this.ints, 1 + slot);
  }

  /** The connection's requests in flight, all workers together. */
  inFlight(): number {
    return Atomics.load(this.ints, totalIndex(this.workers));
  }

  /** A worker died: what it held is gone. Returns how many requests that was. */
  resetSlot(slot: number): number {
    const lost = Atomics.exchange(this.ints, 1 + slot, 0);
    this.addTotal(-lost);
    return lost;
  }

  /** Exactly one of the workers changing the total sees it leave or reach 0: that one tells the server. */
  private addTotal(delta: number): void {
    if (delta === 0) return;
    const before = Atomics.add(this.ints, totalIndex(this.workers), delta);
    if (before === 0) this.server.holders(1);
    else if (before + delta === 0) this.server.holders(-1);
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
  return Math.ceil((4 * WORDS(workers)) / 8) * 8;
}

const IN_FLIGHT = 0;
const HOLDERS = 1;

export class ServerCounters {
  private readonly ints: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(8)) {
    this.ints = new Int32Array(buffer);
  }

  /** Takes one in-flight slot unless `limit` are taken already. */
  tryAcquire(limit: number): boolean {
    if (Atomics.add(this.ints, IN_FLIGHT, 1) < limit) return true;
    Atomics.sub(this.ints, IN_FLIGHT, 1);
    return false;
  }

  /** Takes one in-flight slot whatever the limit (for a connection within its fair share). */
  acquire(): void {
    Atomics.add(this.ints, IN_FLIGHT, 1);
  }

  release(count = 1): void {
    Atomics.sub(this.ints, IN_FLIGHT, count);
  }

  get inFlight(): number {
    return Atomics.load(this.ints, IN_FLIGHT);
  }

  /** A connection started (1) or stopped (-1) holding requests in flight. */
  holders(delta: number): void {
    Atomics.add(this.ints, HOLDERS, delta);
  }

  /** A connection's share of `limit`: limit ÷ the connections holding requests (at least 1). */
  fairShare(limit: number): number {
    return Math.max(1, Math.floor(limit / Math.max(1, Atomics.load(this.ints, HOLDERS))));
  }
}
