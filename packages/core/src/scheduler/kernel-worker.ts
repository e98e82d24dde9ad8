/**
 * A worker's side of the kernel transports: the connections attached to it, and the
 * stats it reports. Requests never pass through the main thread here, so the worker
 * counts them: into its slot's WorkerTally in shared memory, which the main thread reads
 * at once and keeps when the worker dies, and per method into a delta it posts every
 * STATS_INTERVAL_MS (and before each `detached`) for the main thread to merge.
 */
import type { MessagePort } from 'node:worker_threads';
import type { WorkerCodec } from '../codec/codec.js';
import { WorkerStatsRecorder } from '../stats/stats-delta.js';
import { WorkerTally } from '../stats/worker-tally.js';
import { WorkerBudget } from './kernel-budget.js';
import { KernelConnection, type KernelCodec } from './kernel-connection.js';
import type { WorkerControl, WorkerMessage } from './worker-messages.js';

const STATS_INTERVAL_MS = 250;

/** Why `codec` cannot serve kernel transports ("cannot ..."), or null when it can. */
export function kernelUnsupported(codec: WorkerCodec): string | null {
  if (typeof codec.errorReply !== 'function') return 'cannot answer errors in workers (its worker half has no errorReply)';
  if (typeof codec.peek !== 'function') return 'cannot read request heads in workers (its worker half has no peek)';
  return null;
}

export class KernelWorker {
  private readonly connections = new Map<number, KernelConnection>();
  private readonly timer: NodeJS.Timeout;
  /** Made at the first attach: the bound comes with the limits, the tally's memory with the attach. */
  private budget: WorkerBudget | null = null;
  private stats: WorkerStatsRecorder | null = null;

  constructor(
    private readonly port: MessagePort,
    private readonly codec: KernelCodec,
  ) {
    this.timer = setInterval(() => this.postStats(), STATS_INTERVAL_MS);
    // The port keeps the worker alive while it serves; the stats timer must not.
    this.timer.unref();
  }

  control(message: WorkerControl): void {
    if (message.type === 'attach') return this.attach(message);
    const connection = this.connections.get(message.connection);
    if (connection) connection.detach(message.mode, message.graceMs, message.expect);
    else this.post({ type: 'detached', connection: message.connection });
  }

  private attach(message: Extract<WorkerControl, { type: 'attach' }>): void {
    const id = message.connection;
    this.budget ??= new WorkerBudget(message, () => this.connections.values());
    this.stats ??= new WorkerStatsRecorder(new WorkerTally(message.tally));
    const connection = new KernelConnection(message, this.codec, this.stats, this.budget, {
      failed: (reason, text) => this.post({ type: 'connection-failed', connection: id, reason, message: text }),
      detached: () => {
        this.connections.delete(id);
        this.postStats();
        this.post({ type: 'detached', connection: id });
      },
      codecThrew: (text) => this.post({ type: 'codec-threw', message: text }),
    });
    this.connections.set(id, connection);
  }

  private postStats(): void {
    if (!this.stats) return;
    let inFlight = 0;
    for (const connection of this.connections.values()) inFlight += connection.inFlight;
    const delta = this.stats.take(inFlight);
    if (delta) this.post({ type: 'stats', delta });
  }

  private post(message: WorkerMessage): void {
    this.port.postMessage(message);
  }
}
