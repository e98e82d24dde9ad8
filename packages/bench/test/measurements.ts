import type { PeerName } from '../src/peers/spawn-peer.js';
import type { Measurement } from '../src/run/measure.js';

/** A measurement with just the numbers the comparisons and reports read. */
export function run(server: PeerName, requestsPerSecond: number, otherCpuPercent: number, fastP99 = 100): Measurement {
  const latencyUs = { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    scenario: 's', server, connections: 1, depth: 1, seconds: 1, requests: requestsPerSecond,
    requestsPerSecond, errors: 0, lost: 0, fatal: null, latencyUs, serverCpuPercent: 100,
    perClass: [{ label: 'fast', requests: 1, errors: 0, latency: { ...latencyUs, p99: fastP99 } }],
    serverWork: { syscalls: 0, mainSyscalls: 0, voluntarySwitches: 0 },
    generatorCpuPercent: 5, otherCpuPercent, transport: null, workerRequests: null,
  };
}
