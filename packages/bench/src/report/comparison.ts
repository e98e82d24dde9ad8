import type { PeerName } from '../peers/spawn-peer.js';
import { medianValue } from '../run/median-run.js';
import type { Measurement } from '../run/measure.js';
import type { Scenario } from '../scenarios.js';

/** How much better a kmux server did than a peer in one scenario, and whether it met the target. */
export interface Comparison {
  readonly scenario: string;
  /** A kmux server (any transport or protocol). */
  readonly subject: PeerName;
  readonly peer: PeerName;
  /**
   * Median over rounds of the subject's advantage on the scenario's metric, measured back to
   * back in that round: > 1 means kmux did better (more req/s, lower p99, less memory).
   */
  readonly ratio: number;
  /** Rounds the ratio is taken over: the clean ones, or all when none was clean. */
  readonly rounds: number;
  readonly clean: boolean;
  readonly target: number | null;
  readonly met: boolean | null;
}

export const isKmux = (server: PeerName): boolean => server.startsWith('kmux');

/** The number a scenario ranks servers by (see ScenarioMetric). */
export function metricValue(scenario: Scenario, run: Measurement): number {
  switch (scenario.metric) {
    case 'throughput':
      return run.requestsPerSecond;
    case 'focus-p99':
      return run.perClass.find((c) => c.label === scenario.focus)?.latency.p99 ?? Number.NaN;
    case 'rss-per-connection':
      return run.rssPerConnectionBytes ?? Number.NaN;
  }
}

/** `subject`'s advantage over `peer`: > 1 favours the subject whichever way the metric points. */
export function advantage(scenario: Scenario, subject: Measurement, peer: Measurement): number {
  const s = metricValue(scenario, subject);
  const p = metricValue(scenario, peer);
  return scenario.metric === 'throughput' ? s / p : p / s;
}

export function compare(
  scenario: Scenario,
  subjectRuns: readonly Measurement[],
  peerRuns: readonly Measurement[],
  clean: readonly boolean[],
): Comparison {
  const ratios = subjectRuns.map((s, i) => ({ ratio: advantage(scenario, s, peerRuns[i]!), clean: clean[i]! }));
  const cleanRatios = ratios.filter((r) => r.clean);
  const used = cleanRatios.length > 0 ? cleanRatios : ratios;
  const ratio = medianValue(used.map((r) => r.ratio));
  const peer = peerRuns[0]!.server;
  const target = scenario.targets[peer] ?? null;
  return {
    scenario: scenario.name,
    subject: subjectRuns[0]!.server,
    peer,
    ratio,
    rounds: used.length,
    clean: cleanRatios.length > 0,
    target,
    met: target === null ? null : ratio >= target,
  };
}

/** Every kmux server against every other server that ran the scenario. */
export function compareScenario(
  scenario: Scenario,
  runsOf: (server: PeerName) => readonly Measurement[],
  servers: readonly PeerName[],
  clean: readonly boolean[],
): Comparison[] {
  const ran = servers.filter((s) => runsOf(s).length > 0);
  return ran.filter(isKmux).flatMap((subject) =>
    ran.filter((peer) => !isKmux(peer)).map((peer) => compare(scenario, runsOf(subject), runsOf(peer), clean)),
  );
}
