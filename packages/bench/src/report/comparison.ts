import { medianValue } from '../run/median-run.js';
import type { Measurement } from '../run/measure.js';
import type { Scenario } from '../scenarios.js';

/** kmux's throughput over the stock server's in one scenario, and whether it meets the target. */
export interface Comparison {
  readonly scenario: string;
  /** Median over rounds of kmux req/s ÷ stock req/s measured back to back in that round. */
  readonly ratio: number;
  /** Rounds the ratio is taken over: the clean ones, or all when none was clean. */
  readonly rounds: number;
  readonly clean: boolean;
  readonly target: number;
  readonly met: boolean;
}

export function compare(
  scenario: Scenario,
  stock: readonly Measurement[],
  kmux: readonly Measurement[],
  clean: readonly boolean[],
): Comparison {
  const ratios = kmux.map((k, i) => ({ ratio: k.requestsPerSecond / stock[i]!.requestsPerSecond, clean: clean[i]! }));
  const cleanRatios = ratios.filter((r) => r.clean);
  const used = cleanRatios.length > 0 ? cleanRatios : ratios;
  const ratio = medianValue(used.map((r) => r.ratio));
  return {
    scenario: scenario.name,
    ratio,
    rounds: used.length,
    clean: cleanRatios.length > 0,
    target: scenario.targetRatio,
    met: ratio >= scenario.targetRatio,
  };
}
