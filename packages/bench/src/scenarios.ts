import { randomBytes } from 'node:crypto';
import type { CallSpec } from './load/request-template.js';

/** One benchmark workload: what to call, and how hard to push (closed loop). */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly connections: number;
  /** Requests in flight per connection. */
  readonly depth: number;
  readonly calls: readonly CallSpec[];
  /** kmux must reach at least this multiple of the stock server's req/s (the target). */
  readonly targetRatio: number;
}

/** Size of the data hashRounds chains over. */
export const HASH_INPUT_BYTES = 1024;
/** CPU cost of one call in the CPU-heavy scenario. */
export const CPU_CALL_MICROS = 1000;
const ECHO_BYTES = 64;

/**
 * The scenarios of the kmux-vs-stock comparison; `rounds` makes one hashRounds call cost
 * CPU_CALL_MICROS (see calibrateHashRounds). C×D is chosen to saturate both servers:
 * the CPU scenario needs only a few requests queued per worker; echo needs deep pipelines
 * so that per-request overheads, not round trips, bound throughput.
 */
export function benchScenarios(rounds: number): Scenario[] {
  const hashInput = randomBytes(HASH_INPUT_BYTES);
  return [
    {
      name: 'cpu-1ms',
      description: `hashRounds: ${rounds} SHA-256 rounds over ${HASH_INPUT_BYTES} B ≈ ${CPU_CALL_MICROS} µs of CPU`,
      connections: 4,
      depth: 4,
      calls: [{ method: 'hashRounds', args: [hashInput, rounds] }],
      targetRatio: 1.8,
    },
    {
      name: 'echo-64B',
      description: `echo of ${ECHO_BYTES} random bytes`,
      connections: 4,
      depth: 16,
      calls: [{ method: 'echo', args: [randomBytes(ECHO_BYTES)] }],
      targetRatio: 1.0,
    },
  ];
}
