import { RequestBatchWriter } from './batch.js';
import type { WorkerPool } from './worker-pool.js';

/** What the dispatcher needs of a request. */
export interface Dispatchable {
  readonly key: number;
  readonly deadline: number;
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

/**
 * Spreads requests over worker slots, least-loaded first, and packs each slot's share of
 * one event-loop turn into a single batch. A slot takes at most `workerQueueDepth`
 * requests at a time; the rest wait here, so a worker stuck on a slow request holds only
 * what it already has, and fast requests go to the workers that keep answering.
 */
export class Dispatcher {
  private readonly batches: RequestBatchWriter[];
  /** Requests each slot holds: in its batch being built, in transit or in the worker. */
  private readonly load: number[];
  private readonly waiting: Dispatchable[] = [];
  private waitingHead = 0;
  private flushScheduled = false;
  private nextStart = 0;

  constructor(
    private readonly pool: WorkerPool,
    private readonly workerQueueDepth: number,
    private readonly hooks: DispatcherHooks,
  ) {
    this.batches = Array.from({ length: pool.size }, () => new RequestBatchWriter());
    this.load = new Array<number>(pool.size).fill(0);
  }

  /** Requests waiting for a slot with room. */
  get queued(): number {
    return this.waiting.length - this.waitingHead;
  }

  submit(request: Dispatchable): void {
    const slot = this.queued === 0 ? this.leastLoadedSlot() : -1;
    if (slot < 0) {
      this.waiting.push(request);
      return;
    }
    this.assign(request, slot);
  }

  /** A slot finished one request (answered, or its reply was dropped). */
  done(slot: number): void {
    if (this.load[slot]! > 0) this.load[slot]!--;
    this.drainWaiting();
  }

  /** A slot lost its worker: whatever it held is gone (the caller fails those requests). */
  workerExited(slot: number): void {
    this.load[slot] = 0;
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
      const slot = this.leastLoadedSlot();
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

  private leastLoadedSlot(): number {
    const size = this.load.length;
    let best = -1;
    let bestLoad = this.workerQueueDepth;
    // Rotating the starting slot spreads ties instead of always favouring slot 0.
    const start = this.nextStart;
    this.nextStart = (start + 1) % size;
    for (let i = 0; i < size; i++) {
      const slot = (start + i) % size;
      const load = this.load[slot]!;
      if (load < bestLoad && this.pool.isLive(slot)) {
        best = slot;
        bestLoad = load;
        if (load === 0) break;
      }
    }
    return best;
  }

  private assign(request: Dispatchable, slot: number): void {
    request.slot = slot;
    this.load[slot]!++;
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
