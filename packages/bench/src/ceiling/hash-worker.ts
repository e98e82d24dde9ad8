/**
 * Worker-thread entry for the scaling ceiling: calls the example handler's hashRounds in a
 * tight loop — no server, no I/O — and reports how many calls it finished in the window.
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { CATALOG_HANDLER_MODULE } from '../service/catalog-modules.js';

export interface HashWorkerData {
  readonly rounds: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

type HashRounds = (data: Buffer, rounds: number, callback: (error: unknown) => void) => void;

const { rounds, warmupMs, durationMs } = workerData as HashWorkerData;
const handler = createRequire(import.meta.url)(CATALOG_HANDLER_MODULE) as { hashRounds: HashRounds };
const data = Buffer.alloc(1024, 0x5a);
const call = (): void =>
  handler.hashRounds(data, rounds, (error) => {
    if (error) throw error;
  });

const warmEnd = Date.now() + warmupMs;
while (Date.now() < warmEnd) call();
let calls = 0;
const end = Date.now() + durationMs;
while (Date.now() < end) {
  call();
  calls++;
}
parentPort!.postMessage(calls);
