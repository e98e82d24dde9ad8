import type { Measurement } from './measure.js';

/** CPU used by other processes (percent of one core) above which a run counts as disturbed. */
export const BUSY_MACHINE_PERCENT = 15;

function isClean(run: Measurement): boolean {
  return run.otherCpuPercent <= BUSY_MACHINE_PERCENT;
}

/**
 * Which rounds of a scenario no other process disturbed: round i is clean when every
 * server's i-th run is. Servers of one round run back to back, so only a clean round
 * compares them under the same conditions.
 */
export function cleanRounds(runsPerServer: readonly (readonly Measurement[])[]): boolean[] {
  const rounds = Math.min(...runsPerServer.map((runs) => runs.length));
  return Array.from({ length: rounds }, (_, i) => runsPerServer.every((runs) => isClean(runs[i]!)));
}

/** The representative of repeated runs of one server × scenario, and the spread around it. */
export interface BenchRow extends Measurement {
  /** req/s of every run, in the order they ran. */
  readonly runsRequestsPerSecond: readonly number[];
  /** How many rounds were clean (see cleanRounds). */
  readonly cleanRuns: number;
}

/** The element with the median `by` value (the lower middle one for an even count). */
export function median<T>(values: readonly T[], by: (value: T) => number): T {
  if (values.length === 0) throw new Error('median of nothing');
  return [...values].sort((a, b) => by(a) - by(b))[Math.floor((values.length - 1) / 2)]!;
}

/** The median of numbers: the mean of the two middle ones for an even count. */
export function medianValue(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return Number.isInteger(mid) ? (sorted[mid - 1]! + sorted[mid]!) / 2 : sorted[Math.floor(mid)]!;
}

/**
 * Picks the run with the median throughput among the clean rounds, or among all runs when
 * none was clean. A whole run is kept, not per-column medians, so its latencies and CPU
 * belong together.
 */
export function medianRun(runs: readonly Measurement[], clean: readonly boolean[]): BenchRow {
  const cleanRuns = runs.filter((_, i) => clean[i]);
  const chosen = median(cleanRuns.length > 0 ? cleanRuns : runs, (r) => r.requestsPerSecond);
  return { ...chosen, runsRequestsPerSecond: runs.map((r) => r.requestsPerSecond), cleanRuns: cleanRuns.length };
}
