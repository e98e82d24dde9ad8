import { describe, expect, it } from 'vitest';
import { compare, compareScenario } from '../src/report/comparison.js';
import { cleanRounds, medianRun } from '../src/run/median-run.js';
import type { Measurement } from '../src/run/measure.js';
import { run } from './measurements.js';
import type { Scenario } from '../src/scenarios.js';

const throughput: Scenario = {
  name: 's',
  description: '',
  load: { kind: 'closed', connections: 1, depth: 1 },
  calls: [],
  metric: 'throughput',
  targets: { stock: 1.8 },
};

describe('repeated rounds', () => {
  // Round 2 is disturbed for kmux only; rounds 1 and 3 are clean for both.
  const stock = [run('stock', 1000, 0), run('stock', 1000, 0), run('stock', 1100, 1)];
  const kmux = [run('kmux', 1900, 2), run('kmux', 900, 80), run('kmux', 2200, 0)];
  const clean = cleanRounds([stock, kmux]);

  it('calls a round clean only when every server ran undisturbed', () => {
    expect(clean).toEqual([true, false, true]);
  });

  it('compares only the clean rounds, by the median of per-round ratios', () => {
    const c = compare(throughput, kmux, stock, clean);
    expect(c).toMatchObject({ subject: 'kmux', peer: 'stock', rounds: 2, clean: true, target: 1.8, met: true });
    expect(c.ratio).toBeCloseTo((1.9 + 2.0) / 2);
  });

  it('represents a server by a whole run from a clean round', () => {
    const row = medianRun(kmux, clean);
    expect(row.requestsPerSecond).toBe(1900);
    expect(row.runsRequestsPerSecond).toEqual([1900, 900, 2200]);
    expect(row.cleanRuns).toBe(2);
  });

  it('falls back to all rounds, flagged, when none was clean', () => {
    const c = compare(throughput, kmux, stock, [false, false, false]);
    expect(c.clean).toBe(false);
    expect(c.rounds).toBe(3);
  });
});

describe('comparing a scenario', () => {
  it('orients latency so that > 1 favours kmux, and sets targets per peer', () => {
    const mixed: Scenario = { ...throughput, metric: 'focus-p99', focus: 'fast', targets: { piscina: 1 } };
    const runs: Record<string, Measurement[]> = {
      kmux: [run('kmux', 1000, 0, 500)],
      'kmux-protobuf': [run('kmux-protobuf', 1000, 0, 800)],
      stock: [run('stock', 600, 0, 8000)],
      piscina: [run('piscina', 1000, 0, 400)],
    };
    const comparisons = compareScenario(mixed, (s) => runs[s] ?? [], ['stock', 'piscina', 'kmux', 'kmux-protobuf'], [true]);
    expect(comparisons.map((c) => [c.subject, c.peer, c.ratio, c.met])).toEqual([
      ['kmux', 'stock', 16, null],
      ['kmux', 'piscina', 0.8, false],
      ['kmux-protobuf', 'stock', 10, null],
      ['kmux-protobuf', 'piscina', 0.5, false],
    ]);
  });
});
