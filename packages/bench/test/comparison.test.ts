import { describe, expect, it } from 'vitest';
import { compare } from '../src/report/comparison.js';
import { cleanRounds, medianRun } from '../src/run/median-run.js';
import type { Measurement } from '../src/run/measure.js';
import type { Scenario } from '../src/scenarios.js';

const scenario: Scenario = { name: 's', description: '', connections: 1, depth: 1, calls: [], targetRatio: 1.8 };

function run(server: 'stock' | 'kmux', requestsPerSecond: number, otherCpuPercent: number): Measurement {
  const latencyUs = { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    scenario: 's', server, connections: 1, depth: 1, seconds: 1, requests: requestsPerSecond,
    requestsPerSecond, errors: 0, lost: 0, fatal: null, latencyUs, serverCpuPercent: 100,
    generatorCpuPercent: 5, otherCpuPercent, transport: null, workerRequests: null,
  };
}

describe('repeated rounds', () => {
  // Round 2 is disturbed for kmux only; rounds 1 and 3 are clean for both.
  const stock = [run('stock', 1000, 0), run('stock', 1000, 0), run('stock', 1100, 1)];
  const kmux = [run('kmux', 1900, 2), run('kmux', 900, 80), run('kmux', 2200, 0)];
  const clean = cleanRounds([stock, kmux]);

  it('calls a round clean only when every server ran undisturbed', () => {
    expect(clean).toEqual([true, false, true]);
  });

  it('compares only the clean rounds, by the median of per-round ratios', () => {
    const c = compare(scenario, stock, kmux, clean);
    expect(c.rounds).toBe(2);
    expect(c.clean).toBe(true);
    expect(c.ratio).toBeCloseTo((1.9 + 2.0) / 2);
    expect(c.met).toBe(true);
  });

  it('represents a server by a whole run from a clean round', () => {
    const row = medianRun(kmux, clean);
    expect(row.requestsPerSecond).toBe(1900);
    expect(row.runsRequestsPerSecond).toEqual([1900, 900, 2200]);
    expect(row.cleanRuns).toBe(2);
  });

  it('falls back to all rounds, flagged, when none was clean', () => {
    const c = compare(scenario, stock, kmux, [false, false, false]);
    expect(c.clean).toBe(false);
    expect(c.rounds).toBe(3);
  });
});
