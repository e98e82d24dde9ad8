import { RequestBatchWriter } from './batch.js';
import type { WorkerPool } from './worker-pool.js';

/** What the dispatcher needs of a request. */
export interface Dispatchable {
  readonly key: number;
  readonly deadline: number;
  /** Estimated service time, from the cost model. */
  readonly costUs: number;
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
  /** Estimated service time one worker may hold before it gets no more (unless it has none). */
  readonly workerBacklogUs: number;
}

/**
 * Spreads requests over worker slots and packs each slot's share of one event-loop turn
 * into a single batch. A request goes to the slot with the least estimated backlog, and a
 * slot takes more only while its backlog stays within `workerBacklogUs` (a slot whose
 * event loop is free always takes one, even while its async calls are pending) and its count within `workerQueueDepth`. So a worker busy with a slow
 * call holds nothing behind it: fast requests go to the workers that keep answering, or
 * wait here for whichever frees up first.
 */
export class Dispatcher {
  private readonly batches: RequestBatchWriter[];
  private readonly count: number[];
  private readonly backlogUs: number[];
  /** key → [slot, estimated cost, gone async] of every request a worker holds. */
  private readonly held = new Map<number, readonly [number, number, boolean]>();
  private readonly waiting: Dispatchable[] = [];
  private waitingHead = 0;
  private flushScheduled = false;
  private nextStart = 0;

  constructor(
    private readonly pool: WorkerPool,
    private readonly limits: DispatcherLimits,
    private readonly hooks: DispatcherHooks,
  ) {
    this.batches = Array.from({ length: pool.size }, () => new RequestBatchWriter());
    this.count = new Array<number>(pool.size).fill(0);
    this.backlogUs = new Array<number>(pool.size).fill(0);
  }

  /** Whether a worker still holds `key` (its request may have been answered already). */
  holds(key: number): boolean {
    return this.held.has(key);
  }

  /** Requests waiting for a slot with room. */
  get queued(): number {
    return this.waiting.length - this.waitingHead;
  }

  submit(request: Dispatchable): void {
    const slot = this.queued === 0 ? this.slotFor(request.costUs) : -1;
    if (slot < 0) this.waiting.push(request);
    else this.assign(request, slot);
  }

  /**
   * Request `key` went asynchronous in its worker: it no longer occupies the worker's
   * event loop, so its estimated cost leaves the backlog (it still counts against the depth).
   */
  wentAsync(key: number): void {
    const entry = this.held.get(key);
    if (!entry || entry[2]) return;
    const [slot, costUs] = entry;
    this.held.set(key, [slot, costUs, true]);
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
    if (!async) this.backlogUs[slot]! -= costUs;
    this.drainWaiting();
    return async;
  }

  /** A slot lost its worker: whatever it held is gone (the caller fails those requests). */
  workerExited(slot: number): void {
    for (const [key, [heldBy]] of this.held) if (heldBy === slot) this.held.delete(key);
    this.count[slot] = 0;
    this.backlogUs[slot] = 0;
    this.batches[slot]!.take();
  }

  /** A slot has a (new) worker: queued requests can go to it. */
  workerReady(): void {
    this.drainWaiting();
  }

  private drainWaiting(): void {
    while (this.queued > 0) {
      const request = this.waiting[this.waitingHead]!;
      if (!this.hooks.stillWanted(request)) {
        this.popWaiting();
        continue;
      }
      const slot = this.slotFor(request.costUs);
      if (slot < 0) return;
      this.popWaiting();
      this.assign(request, slot);
    }
  }

  private popWaiting(): void {
    this.waiting[this.waitingHead++] = undefined as unknown as Dispatchable;
    // Compact now and then instead of shift(), which is O(n) per call.
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }

  /** The live slot with the least backlog that has room for `costUs`; -1 if none. */
  private slotFor(costUs: number): number {
    const size = this.count.length;
    let best = -1;
    let bestBacklog = Number.POSITIVE_INFINITY;
    // Rotating the starting slot spreads ties instead of always favouring slot 0.
    const start = this.nextStart;
    this.nextStart = (start + 1) % size;
    for (let i = 0; i < size; i++) {
      const slot = (start + i) % size;
      const count = this.count[slot]!;
      const backlog = this.backlogUs[slot]!;
      // A worker whose event loop is free (no synchronous backlog; async calls may be
      // pending) takes any request; a busy one only while the budget allows. Below 1 µs is
      // the float residue of adding and subtracting estimates.
      const free = backlog < 1;
      const hasRoom = count < this.limits.workerQueueDepth && (free || backlog + costUs <= this.limits.workerBacklogUs);
      if (hasRoom && backlog < bestBacklog && this.pool.isLive(slot)) {
        best = slot;
        bestBacklog = backlog;
        if (free) break;
      }
    }
    return best;
  }

  private assign(request: Dispatchable, slot: number): void {
    request.slot = slot;
    this.count[slot]!++;
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
