import { RequestBatchWriter } from './batch.js';
import { FairQueue } from './fair-queue.js';
import { WorkerClocks } from './worker-clocks.js';
import type { WorkerPool } from './worker-pool.js';

/** What the dispatcher needs of a request. */
export interface Dispatchable {
  readonly key: number;
  readonly deadline: number;
  /** Estimated service time, from the cost model. */
  readonly costUs: number;
  /** The flow the request is queued fairly in: its connection. */
  readonly flow: object;
  /** A call of a method the server was told is slow (`slowMethods`): it runs only in the slow lane. */
  readonly slow: boolean;
  /** Set by the dispatcher to the worker slot the request went to. */
  slot: number;
  /** Held only while the request waits in the queue; dropped once packed into a batch. */
  body: Buffer | null;
}

export interface DispatcherHooks {
  /** Whether a waiting request still wants to run (it may have timed out meanwhile). */
  stillWanted(request: Dispatchable): boolean;
  /** A request was packed for `slot`. */
  assigned(slot: number): void;
}

export interface DispatcherLimits {
  /** Requests one worker may hold at once. */
  readonly workerQueueDepth: number;
  /** Estimated service time one busy worker may hold. */
  readonly workerBacklogUs: number;
  /** A busy worker takes another request only while its current call has run less than this. */
  readonly busyWorkerGraceUs: number;
  /** Workers (the first slots) that may run slow-lane requests. */
  readonly slowWorkers: number;
}

const ANY_LANE = 0;
const SLOW_LANE = 1;

/**
 * Spreads requests over worker slots and packs each slot's share of one event-loop turn
 * into a single batch. The policy (the native multiplexer follows the same):
 *
 * 1. A request goes to a live worker whose event loop is free (it runs no synchronous call;
 *    calls that went async may be pending; its heap is not in a GC pause) and that holds
 *    fewer than `workerQueueDepth`.
 * 2. With no worker free, a busy one not in a GC pause takes it only if its current call has run less than
 *    `busyWorkerGraceUs` (or it has not yet started the batch it was sent), its estimated
 *    synchronous backlog stays within `workerBacklogUs`, and it holds fewer than the depth.
 *    A worker stuck in a long call gets nothing more, whatever its method's learned cost:
 *    what it holds behind that call waits as long as the call runs.
 * 3. Failing both, a worker free but for a GC pause takes it (the pause ends within ms).
 *    Otherwise the request waits here, in a per-connection queue served round robin
 *    (fair-queue.ts), for the first worker that qualifies: checked whenever a worker
 *    answers, a call goes async, or a worker (re)starts.
 * 4. Lanes: requests of `slowMethods` go only to free workers among the first `slowWorkers`
 *    slots and wait in a queue of their own, so fast calls always find the other workers
 *    free of them.
 */
export class Dispatcher {
  private readonly batches: RequestBatchWriter[];
  private readonly count: number[];
  /** Requests each slot holds that have not finished nor gone async: they occupy its event loop. */
  private readonly running: number[];
  private readonly backlogUs: number[];
  /** key → [slot, estimated cost, gone async] of every request a worker holds. */
  private readonly held = new Map<number, readonly [number, number, boolean]>();
  private readonly waiting = [new FairQueue<Dispatchable>(), new FairQueue<Dispatchable>()];
  private flushScheduled = false;
  private nextStart = 0;

  constructor(
    private readonly pool: WorkerPool,
    private readonly clocks: WorkerClocks,
    private readonly limits: DispatcherLimits,
    private readonly hooks: DispatcherHooks,
  ) {
    this.batches = Array.from({ length: pool.size }, () => new RequestBatchWriter());
    this.count = new Array<number>(pool.size).fill(0);
    this.running = new Array<number>(pool.size).fill(0);
    this.backlogUs = new Array<number>(pool.size).fill(0);
  }

  /** Whether a worker still holds `key` (its request may have been answered already). */
  holds(key: number): boolean {
    return this.held.has(key);
  }

  /** Requests waiting for a slot with room. */
  get queued(): number {
    return this.waiting[ANY_LANE]!.size + this.waiting[SLOW_LANE]!.size;
  }

  submit(request: Dispatchable): void {
    const queue = this.waiting[request.slow ? SLOW_LANE : ANY_LANE]!;
    const slot = queue.size === 0 ? this.slotFor(request) : -1;
    if (slot < 0) queue.push(request.flow, request);
    else this.assign(request, slot);
  }

  /**
   * Request `key` went asynchronous in its worker: it no longer occupies the worker's
   * event loop, so it leaves the backlog (it still counts against the depth).
   */
  wentAsync(key: number): void {
    const entry = this.held.get(key);
    if (!entry || entry[2]) return;
    const [slot, costUs] = entry;
    this.held.set(key, [slot, costUs, true]);
    this.running[slot]!--;
    this.backlogUs[slot]! -= costUs;
    this.drainWaiting();
  }

  /** A worker finished request `key` (answered, or its reply was dropped). Returns whether it had gone async. */
  done(key: number): boolean {
    const entry = this.held.get(key);
    if (!entry) return false;
    this.held.delete(key);
    const [slot, costUs, async] = entry;
    this.count[slot]!--;
    if (!async) {
      this.running[slot]!--;
      this.backlogUs[slot]! -= costUs;
    }
    this.drainWaiting();
    return async;
  }

  /** A slot lost its worker: whatever it held is gone (the caller fails those requests). */
  workerExited(slot: number): void {
    for (const [key, [heldBy]] of this.held) if (heldBy === slot) this.held.delete(key);
    this.count[slot] = 0;
    this.running[slot] = 0;
    this.backlogUs[slot] = 0;
    this.clocks.idle(slot);
    this.batches[slot]!.take();
  }

  /** A slot has a (new) worker: queued requests can go to it. */
  workerReady(): void {
    this.drainWaiting();
  }

  private drainWaiting(): void {
    for (const queue of this.waiting) {
      for (let request = queue.peek(); request; request = queue.peek()) {
        if (!this.hooks.stillWanted(request)) {
          queue.shift();
          continue;
        }
        const slot = this.slotFor(request);
        if (slot < 0) break;
        queue.shift();
        this.assign(request, slot);
      }
    }
  }

  /** A slot that may take `request` under the policy above; -1 if none. */
  private slotFor(request: Dispatchable): number {
    const size = request.slow ? Math.min(this.limits.slowWorkers, this.count.length) : this.count.length;
    const { workerQueueDepth, workerBacklogUs, busyWorkerGraceUs } = this.limits;
    // Rotating the starting slot spreads ties instead of always favouring slot 0.
    const start = this.nextStart++ % size;
    let busy = -1;
    let busyBacklog = Number.POSITIVE_INFINITY;
    let pausing = -1;
    let now = 0;
    for (let i = 0; i < size; i++) {
      const slot = (start + i) % size;
      if (this.count[slot]! >= workerQueueDepth || !this.pool.isLive(slot)) continue;
      if (this.clocks.inGcPause(slot)) {
        // Free but for the pause: the last resort. Busy and pausing: it gets nothing more.
        if (this.running[slot] === 0 && pausing < 0) pausing = slot;
        continue;
      }
      if (this.running[slot] === 0) return slot;
      if (request.slow) continue;
      const backlog = this.backlogUs[slot]!;
      if (backlog >= busyBacklog || backlog + request.costUs > workerBacklogUs) continue;
      now ||= WorkerClocks.now();
      if (this.clocks.runningUs(slot, now) >= busyWorkerGraceUs) continue;
      busy = slot;
      busyBacklog = backlog;
    }
    return busy >= 0 ? busy : pausing;
  }

  private assign(request: Dispatchable, slot: number): void {
    request.slot = slot;
    this.count[slot]!++;
    this.running[slot]!++;
    this.backlogUs[slot]! += request.costUs;
    this.held.set(request.key, [slot, request.costUs, false]);
    this.hooks.assigned(slot);
    this.batches[slot]!.add(request.key, request.deadline, request.body!);
    request.body = null;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (let slot = 0; slot < this.batches.length; slot++) {
      const batch = this.batches[slot]!;
      if (batch.count > 0) this.pool.send(slot, batch.take());
    }
  };
}
