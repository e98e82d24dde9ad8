import { PEERS, type PeerName, type PeerSpec } from '../peers/spawn-peer.js';
import { progressLine } from '../report/progress.js';
import type { Scenario } from '../scenarios.js';
import { measure, notApplicable, type Measurement, type MeasureOptions } from './measure.js';

/** A server × scenario the bench did not run, and why. */
export interface Skipped {
  readonly scenario: string;
  readonly server: PeerName;
  readonly reason: string;
}

/** Servers that can run `scenario`; the others, with the reason, go to `skipped`. */
export function serversFor(scenario: Scenario, servers: readonly PeerName[], skipped: Skipped[]): PeerName[] {
  return servers.filter((server) => {
    const spec: PeerSpec = PEERS[server];
    const reason = notApplicable(scenario, spec.echoOnly === true, spec.protocol);
    if (reason !== null && !skipped.some((s) => s.scenario === scenario.name && s.server === server)) {
      skipped.push({ scenario: scenario.name, server, reason });
    }
    return reason === null;
  });
}

/**
 * Runs every scenario against every server that can run it, `repeat` times over. Rounds
 * are interleaved (round 1 of everything, then round 2 ...) and the servers of one
 * scenario run back to back, so slow drifts in machine load hit them alike.
 */
export async function runRounds(
  scenarios: readonly Scenario[],
  servers: readonly PeerName[],
  repeat: number,
  options: Omit<MeasureOptions, 'onProgress' | 'onStage'>,
): Promise<{ runs: Measurement[]; skipped: Skipped[] }> {
  const runs: Measurement[] = [];
  const skipped: Skipped[] = [];
  const transportShown = new Set<PeerName>();
  for (let round = 1; round <= repeat; round++) {
    for (const scenario of scenarios) {
      const roundNote = repeat > 1 ? ` (round ${round}/${repeat})` : '';
      console.error(`${scenario.name}${roundNote}: ${scenario.description}`);
      for (const server of serversFor(scenario, servers, skipped)) {
        const progress = progressLine(`  ${PEERS[server].title}`, options.warmupSeconds, options.durationSeconds);
        const run = await measure(scenario, server, { ...options, onProgress: (p) => progress.update(p), onStage: (s) => progress.stage(s) });
        progress.done(summary(scenario, run));
        if (run.transport && !transportShown.has(server)) {
          transportShown.add(server);
          console.error(`    transport: ${run.transport}`);
        }
        if (run.fatal) console.error(`    FATAL: ${run.fatal}`);
        runs.push(run);
      }
    }
  }
  return { runs, skipped };
}

function summary(scenario: Scenario, run: Measurement): string {
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  const other = `other load ${n(run.otherCpuPercent)}% of a core`;
  if (scenario.metric === 'rss-per-connection') {
    return `${n((run.rssPerConnectionBytes ?? NaN) / 1024)} KiB per connection, ${other}`;
  }
  if (scenario.metric === 'focus-p99') {
    const focus = run.perClass.find((c) => c.label === scenario.focus);
    const capacity = run.capacityPerSecond === undefined ? '' : ` (capacity ${n(run.capacityPerSecond)})`;
    return `${n(run.offeredPerSecond ?? 0)} req/s offered${capacity}, ${scenario.focus} p99 ${n(focus?.latency.p99 ?? NaN)} µs, ${other}`;
  }
  return `${n(run.requestsPerSecond)} req/s, p99 ${n(run.latencyUs.p99)} µs, ${other}`;
}
