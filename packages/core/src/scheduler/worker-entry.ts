/**
 * The piscina task every worker runs for as long as it lives: it loads the codec's worker
 * half, then serves request batches from its MessagePort until the port closes. One
 * long-lived task per worker lets piscina own the thread's lifecycle (replacement,
 * resourceLimits) while requests flow in batches instead of one task each.
 */
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { threadId, type MessagePort } from 'node:worker_threads';
import { watchGcPauses } from '@kmux/native';
import type { CreateWorkerCodec, WorkerCodec, WorkerResult } from '../codec/codec.js';
import type { WorkerCodecSpec } from '../codec/codec.js';
import { REPLY_EXCEPTION, REPLY_FAILED, REPLY_WENT_ASYNC, ReplyBatchWriter, readRequestBatch } from './batch.js';
import { KernelWorker, kernelUnsupported } from './kernel-worker.js';
import { applyThreadSlice } from './thread-slice.js';
import { WorkerClocks } from './worker-clocks.js';
import type { KernelCodec } from './kernel-connection.js';
import type { WorkerControl, WorkerMessage } from './worker-messages.js';

export interface ServeTask {
  readonly port: MessagePort;
  readonly codec: WorkerCodecSpec;
  /** The pool's WorkerClocks buffer, and this worker's slot in it. */
  readonly clocks: SharedArrayBuffer;
  readonly slot: number;
  readonly threadSliceUs: number | false;
}

/** A long synchronous run of handlers sends what it has finished at least this often. */
const MAX_REPLY_HOLD_MS = 1;

async function loadCodec(spec: WorkerCodecSpec): Promise<WorkerCodec> {
  const url = spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href;
  const mod = (await import(url)) as { createWorkerCodec?: CreateWorkerCodec };
  if (typeof mod.createWorkerCodec !== 'function') {
    throw new TypeError(`codec module ${spec.module} does not export createWorkerCodec`);
  }
  return mod.createWorkerCodec(spec.options);
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

class BatchServer {
  private readonly replies = new ReplyBatchWriter();
  private flushScheduled = false;
  private lastFlush = performance.now();

  constructor(
    private readonly port: MessagePort,
    private readonly codec: WorkerCodec,
    private readonly clocks: WorkerClocks,
    private readonly slot: number,
  ) {}

  serveBatch(batch: ArrayBuffer): void {
    readRequestBatch(batch, (key, deadline, body) => {
      // The main thread has already answered an expired request; running it would only
      // burn CPU that an overloaded server needs for requests that can still make it.
      if (Date.now() > deadline) {
        this.replies.add(key, REPLY_FAILED, 0, null);
        return;
      }
      let result: WorkerResult | Promise<WorkerResult>;
      // Only the synchronous part counts as service time: it is what blocks this worker.
      this.clocks.callStarted(this.slot);
      const started = performance.now();
      try {
        result = this.codec.handle(body, { deadline });
      } catch (error) {
        this.fail(key, error);
        return;
      }
      const serviceUs = (performance.now() - started) * 1000;
      if (isPromise(result)) {
        // Tell the main thread now that this worker is free, not when the promise settles.
        this.replies.add(key, REPLY_WENT_ASYNC, serviceUs, null);
        result.then(
          (done) => this.complete(key, 0, done),
          (error: unknown) => this.fail(key, error),
        );
      } else {
        this.complete(key, serviceUs, result);
      }
    });
    this.clocks.idle(this.slot);
    this.flush();
  }

  private complete(key: number, serviceUs: number, result: WorkerResult): void {
    const flags = (result.failed ? REPLY_FAILED : 0) | (result.declaredException ? REPLY_EXCEPTION : 0);
    this.replies.add(key, flags, serviceUs, result.reply);
    if (performance.now() - this.lastFlush >= MAX_REPLY_HOLD_MS) this.flush();
    else this.scheduleFlush();
  }

  /** A codec must turn errors into replies; a throw is a codec bug, reported as such. */
  private fail(key: number, error: unknown): void {
    const message: WorkerMessage = { type: 'codec-error', key, message: String(error) };
    this.port.postMessage(message);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    this.lastFlush = performance.now();
    if (this.replies.count === 0) return;
    const batch = this.replies.take();
    const message: WorkerMessage = { type: 'replies', batch };
    this.port.postMessage(message, [batch]);
  }
}

export default async function serve({ port, codec: spec, clocks, slot, threadSliceUs }: ServeTask): Promise<void> {
  const slice = applyThreadSlice(threadSliceUs);
  const workerClocks = new WorkerClocks(clocks);
  // Without the addon the dispatcher just never sees this worker pause.
  watchGcPauses(workerClocks.gcPauses, slot);
  const codec = await loadCodec(spec);
  const server = new BatchServer(port, codec, workerClocks, slot);
  const unsupported = kernelUnsupported(codec);
  // Built on the first attach: only a kernel transport sends control messages.
  let kernel: KernelWorker | null = null;
  port.on('message', (message: ArrayBuffer | WorkerControl) => {
    if (message instanceof ArrayBuffer) return server.serveBatch(message);
    kernel ??= new KernelWorker(port, codec as KernelCodec);
    kernel.control(message);
  });
  const ready: WorkerMessage = {
    type: 'ready',
    threadId,
    kernelUnsupported: unsupported,
    methods: codec.methods,
    warnings: codec.warnings ?? [],
    slice,
  };
  port.postMessage(ready);
  await once(port, 'close');
}
