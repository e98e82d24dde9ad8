/**
 * A worker's side of the kernel transports: the connections attached to it, and their
 * stats. Requests never pass through the main thread here, so the worker counts them, in
 * shared memory the main thread reads at once and keeps when the worker dies: its slot's
 * WorkerTally, and a MethodTally per method, whose buffer it posts at the method's first call.
 */
import type { MessagePort } from 'node:worker_threads';
import { PollGroup } from '@kmux/native';
import type { WorkerCodec } from '../codec/codec.js';
import { WorkerStatsRecorder } from '../stats/worker-recorder.js';
import { WorkerTally } from '../stats/worker-tally.js';
import { WorkerBudget } from './kernel-budget.js';
import { KernelConnection, type KernelCodec } from './kernel-connection.js';
import type { WorkerControl, WorkerMessage } from './worker-messages.js';

/** Why `codec` cannot serve kernel transports ("cannot ..."), or null when it can. */
export function kernelUnsupported(codec: WorkerCodec): string | null {
  if (typeof codec.errorReply !== 'function') return 'cannot answer errors in workers (its worker half has no errorReply)';
  if (typeof codec.peek !== 'function') return 'cannot read request heads in workers (its worker half has no peek)';
  return null;
}

export class KernelWorker {
  private readonly connections = new Map<number, KernelConnection>();
  /** Made at the first attach: the bound comes with the limits, the tally's memory with the attach. */
  private budget: WorkerBudget | null = null;
  /** Every connection's fd, read (or not, as the budget says) together. Closed with the thread. */
  private group: PollGroup | null = null;
  private stats: WorkerStatsRecorder | null = null;

  constructor(
    private readonly port: MessagePort,
    private readonly codec: KernelCodec,
  ) {}

  control(message: WorkerControl): void {
    if (message.type === 'attach') return this.attach(message);
    const connection = this.connections.get(message.connection);
    if (connection) connection.detach(message.mode, message.graceMs, message.expect);
    else this.post({ type: 'detached', connection: message.connection });
  }

  private attach(message: Extract<WorkerControl, { type: 'attach' }>): void {
    const id = message.connection;
    this.group ??= new PollGroup();
    this.budget ??= new WorkerBudget(message, this.group);
    this.stats ??= new WorkerStatsRecorder(new WorkerTally(message.tally), this.codec.methods, (name, buffer) =>
      this.post({ type: 'method', name, buffer }),
    );
    const connection = new KernelConnection(message, this.codec, this.stats, this.budget, this.group, {
      failed: (reason, text) => this.post({ type: 'connection-failed', connection: id, reason, message: text }),
      detached: () => {
        this.connections.delete(id);
        this.post({ type: 'detached', connection: id });
      },
      codecThrew: (text) => this.post({ type: 'codec-threw', message: text }),
    });
    this.connections.set(id, connection);
  }

  private post(message: WorkerMessage): void {
    this.port.postMessage(message);
  }
}
