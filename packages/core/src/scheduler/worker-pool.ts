import { MessageChannel, receiveMessageOnPort, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { WorkerCodecSpec } from '../codec/codec.js';
import type { ServeTask } from './worker-entry.js';
import type { ThreadSliceOutcome } from './thread-slice.js';
import { WorkerClocks } from './worker-clocks.js';
import type { KernelWorkerMessage, WorkerControl, WorkerMessage } from './worker-messages.js';

export interface WorkerPoolEvents {
  /** A batch of replies (see batch.ts) from the worker in `slot`. */
  onReplies(slot: number, batch: ArrayBuffer): void;
  /** The codec in `slot` threw for request `key` instead of producing a reply. */
  onCodecError(slot: number, key: number, message: string): void;
  /** The worker in `slot` is gone; its in-flight requests will never be answered. */
  onWorkerExit(slot: number, reason: string): void;
  /** The worker in `slot` (new or replacement) is serving. */
  onWorkerReady(slot: number, threadId: number, slice: ThreadSliceOutcome | null): void;
  /** A kernel transport's message from the worker in `slot` (a method's tally, detached, ...). */
  onKernelMessage(slot: number, message: KernelWorkerMessage): void;
}

export interface WorkerPoolOptions {
  readonly size: number;
  readonly codec: WorkerCodecSpec;
  readonly resourceLimits?: ResourceLimits;
  readonly threadSliceUs: number | false;
}

interface Slot {
  port: MessagePort | null;
  threadId: number;
}

const WORKER_ENTRY = new URL('./worker-entry.js', import.meta.url).href;

/**
 * A fixed set of worker slots. piscina owns the threads (start, replacement after a
 * crash, resourceLimits); each slot runs one long-lived serve task that talks to the
 * main thread over its own MessagePort. When a worker dies its task rejects, the slot
 * reports the exit and starts a new serve task, which piscina places on the
 * replacement thread.
 */
export class WorkerPool {
  private readonly piscina: Piscina;
  private readonly slots: Slot[];
  /** When each slot's current call started (see worker-clocks.ts). */
  readonly clocks: WorkerClocks;
  private closing = false;
  private kernelSupport: string | null = null;
  /** What the first worker's codec reported at start: the service's methods, load warnings. */
  private codecReport: { readonly methods: readonly string[] | undefined; readonly warnings: readonly string[] } | null = null;

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly events: WorkerPoolEvents,
  ) {
    this.piscina = new Piscina({
      filename: WORKER_ENTRY,
      minThreads: options.size,
      maxThreads: options.size,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      // Workers run their own event loop for async handlers; never park them in Atomics.wait.
      atomics: 'disabled',
      ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
    });
    // Errors reach the serve task's promise; this keeps a stray 'error' from crashing us.
    this.piscina.on('error', () => {});
    this.slots = Array.from({ length: options.size }, () => ({ port: null, threadId: -1 }));
    this.clocks = WorkerClocks.create(options.size);
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts every slot and resolves once all of them serve, or rejects with the first load error. */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((_, slot) => this.startSlot(slot)));
  }

  /** Sends a request batch to a slot. Returns false when that slot has no live worker. */
  send(slot: number, batch: ArrayBuffer): boolean {
    const port = this.slots[slot]?.port;
    if (!port) return false;
    port.postMessage(batch, [batch]);
    return true;
  }

  /** Sends a kernel transport's control message to a slot. Returns false when that slot has no live worker. */
  control(slot: number, message: WorkerControl): boolean {
    const port = this.slots[slot]?.port;
    if (!port) return false;
    port.postMessage(message);
    return true;
  }

  /** Why the codec's worker half cannot serve kernel transports ("cannot …"), or null; known once started. */
  get kernelUnsupported(): string | null {
    return this.kernelSupport;
  }

  /** The service's method names (WorkerCodec.methods); known once started, undefined without an IDL. */
  get methods(): readonly string[] | undefined {
    return this.codecReport?.methods;
  }

  /** The codec's load warnings (WorkerCodec.warnings), from the first worker only: each loads the same modules. */
  get warnings(): readonly string[] {
    return this.codecReport?.warnings ?? [];
  }

  isLive(slot: number): boolean {
    return this.slots[slot]?.port != null;
  }

  threadIdOf(slot: number): number {
    return this.slots[slot]?.threadId ?? -1;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const slot of this.slots) {
      slot.port?.close();
      slot.port = null;
    }
    await this.piscina.destroy();
  }

  private startSlot(slot: number): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    const task: ServeTask = { port: port2, codec: this.options.codec, clocks: this.clocks.buffer, slot, threadSliceUs: this.options.threadSliceUs };
    return new Promise<void>((resolveReady, rejectReady) => {
      let ready = false;
      const onMessage = (message: WorkerMessage): void => {
        switch (message.type) {
          case 'replies':
            this.events.onReplies(slot, message.batch);
            break;
          case 'codec-error':
            this.events.onCodecError(slot, message.key, message.message);
            break;
          case 'method':
          case 'detached':
          case 'connection-failed':
          case 'codec-threw':
            this.events.onKernelMessage(slot, message);
            break;
          case 'ready':
            ready = true;
            this.kernelSupport = message.kernelUnsupported;
            this.codecReport ??= { methods: message.methods, warnings: message.warnings };
            this.slots[slot] = { port: port1, threadId: message.threadId };
            this.events.onWorkerReady(slot, message.threadId, message.slice);
            resolveReady();
            break;
        }
      };
      port1.on('message', onMessage);
      this.piscina.run(task, { transferList: [port2] }).then(
        () => this.onSlotEnded(slot, port1, onMessage, 'worker stopped serving'),
        (error: unknown) => {
          if (ready) this.onSlotEnded(slot, port1, onMessage, error instanceof Error ? error.message : String(error));
          else {
            port1.close();
            rejectReady(error);
          }
        },
      );
    });
  }

  private onSlotEnded(slot: number, port: MessagePort, onMessage: (message: WorkerMessage) => void, reason: string): void {
    // What the worker posted just before it died (a method's tally, then process.exit in the
    // handler) may still be queued when its exit is reported: deliver it, as closing drops it.
    for (let queued = receiveMessageOnPort(port); queued; queued = receiveMessageOnPort(port)) onMessage(queued.message as WorkerMessage);
    port.close();
    const current = this.slots[slot];
    if (current?.port === port) this.slots[slot] = { port: null, threadId: -1 };
    if (this.closing) return;
    this.events.onWorkerExit(slot, reason);
    // Only a worker that was serving is replaced; one that fails to load its codec would
    // fail again, so that error goes to whoever awaited the start instead.
    this.startSlot(slot).catch((error: unknown) =>
      this.events.onWorkerExit(slot, `replacement failed: ${String(error)}`),
    );
  }
}
