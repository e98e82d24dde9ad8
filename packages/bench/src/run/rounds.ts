import { PEERS, type PeerName } from '../peers/spawn-peer.js';
import { progressLine } from '../report/progress.js';
import type { Scenario } from '../scenarios.js';
import { measure, type Measurement, type MeasureOptions } from './measure.js';

/**
 * Runs every scenario against every server, `repeat` times over. Rounds are interleaved
 * (round 1 of everything, then round 2 ...) and the servers of one scenario run back to
 * back, so slow drifts in machine load hit them alike. Returns the runs in order.
 */
export async function runRounds(
  scenarios: readonly Scenario[],
  servers: readonly PeerName[],
  repeat: number,
  options: Omit<MeasureOptions, 'onProgress'>,
): Promise<Measurement[]> {
  const runs: Measurement[] = [];
  const transportShown = new Set<PeerName>();
  for (let round = 1; round <= repeat; round++) {
    for (const scenario of scenarios) {
      const roundNote = repeat > 1 ? ` (round ${round}/${repeat})` : '';
      console.error(`${scenario.name}${roundNote}: ${scenario.description}`);
      for (const server of servers) {
        const progress = progressLine(`  ${PEERS[server].title}`, options.warmupSeconds, options.durationSeconds);
        const run = await measure(scenario, server, { ...options, onProgress: (p) => progress.update(p) });
        const other = `other load ${Math.round(run.otherCpuPercent)}% of a core`;
        progress.done(`${Math.round(run.requestsPerSecond).toLocaleString('en-US')} req/s, p99 ${run.latencyUs.p99} µs, ${other}`);
        if (run.transport && !transportShown.has(server)) {
          transportShown.add(server);
          console.error(`    transport: ${run.transport}`);
        }
        if (run.fatal) console.error(`    FATAL: ${run.fatal}`);
        runs.push(run);
      }
    }
  }
  return runs;
}
