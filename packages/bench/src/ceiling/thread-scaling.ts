import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { CpuWindow } from '../cpu/process-cpu.js';
import type { HashWorkerData } from './hash-worker.js';

const HASH_WORKER = new URL('./hash-worker.js', import.meta.url);

/** How much faster N threads run the CPU-heavy handler than one, with no server at all. */
export interface ThreadScaling {
  readonly threads: number;
  readonly oneThreadCallsPerSecond: number;
  readonly allThreadsCallsPerSecond: number;
  /** The best any N-worker server can do over a single-threaded one on this machine. */
  readonly ratio: number;
  /** CPU other processes used meanwhile, percent of one core (see BUSY_MACHINE_PERCENT). */
  readonly otherCpuPercent: number;
}

async function callsPerSecond(threads: number, data: HashWorkerData): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: threads }, async () => {
      const [calls] = (await once(new Worker(HASH_WORKER, { workerData: data }), 'message')) as [number];
      return calls;
    }),
  );
  return counts.reduce((sum, n) => sum + n, 0) / (data.durationMs / 1000);
}

/**
 * The machine's ceiling for the CPU scenario: hashRounds in 1 thread, then in `threads`
 * threads at once. Virtual CPUs that share a physical core, or other load, show up as a
 * ratio well below `threads` — and cap what kmux can reach against the stock server.
 */
export async function measureThreadScaling(threads: number, rounds: number, seconds: number): Promise<ThreadScaling> {
  const data: HashWorkerData = { rounds, warmupMs: 300, durationMs: seconds * 1000 };
  const machine = CpuWindow.ofMachine();
  const own = CpuWindow.ofProcess(process.pid);
  machine.start();
  own.start();
  const one = await callsPerSecond(1, data);
  const all = await callsPerSecond(threads, data);
  machine.stop();
  own.stop();
  return {
    threads,
    oneThreadCallsPerSecond: one,
    allThreadsCallsPerSecond: all,
    ratio: all / one,
    otherCpuPercent: Math.max(0, machine.percentOfOneCore - own.percentOfOneCore),
  };
}
