import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareScenario } from '../src/report/comparison.js';
import { writeResults } from '../src/report/results-file.js';
import { scenarioTable } from '../src/report/table.js';
import { medianRun } from '../src/run/median-run.js';
import { benchScenarios } from '../src/scenarios.js';
import { run } from './measurements.js';

const ceiling = { threads: 2, oneThreadCallsPerSecond: 900, allThreadsCallsPerSecond: 1700, ratio: 1.89, otherCpuPercent: 0 };

describe('the report', () => {
  const scenario = benchScenarios(400, 100).find((s) => s.name === 'mixed-same-method')!;
  const runs = { kmux: [run('kmux', 3000, 0, 450)], stock: [run('stock', 1500, 0, 9000)], grpc: [run('grpc', 1000, 0, 4000)] };
  const runsOf = (s: string) => runs[s as keyof typeof runs] ?? [];
  const servers = ['stock', 'grpc', 'kmux'] as const;
  const rows = servers.map((s) => ({ ...medianRun(runsOf(s), [true]), scenario: scenario.name }));
  const comparisons = compareScenario(scenario, runsOf, servers, [true]);

  it('tabulates the focus class and kmux against each peer', () => {
    const table = scenarioTable(scenario, rows, comparisons);
    expect(table).toMatch(/fast p99 µs/);
    expect(table).toMatch(/vs stock\s+vs grpc/);
    expect(table).toMatch(/kmux .*20× ≥3\.3 ok\s+8\.9×/);
  });

  it('writes results.json and a self-contained HTML report with a chart per scenario', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kmux-bench-report-'));
    const settings = { warmupSeconds: 1, durationSeconds: 2, repeat: 1, workers: 2 };
    const written = writeResults(dir, new Date(), { settings, ceiling, scenarios: [scenario], rows, runs: [], comparisons, skipped: [] }, true);
    const results = JSON.parse(readFileSync(written.json, 'utf8')) as { rows: { server: string; requestsPerSecond: number }[] };
    expect(results.rows.map((r) => [r.server, r.requestsPerSecond])).toEqual([['stock', 1500], ['grpc', 1000], ['kmux', 3000]]);
    const html = readFileSync(written.html, 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).toMatch(/<polyline[^>]+stroke="#1f6feb"/);
    // Nothing loaded from elsewhere: no scripts, no links but the SVG namespace.
    expect(html).not.toMatch(/<script|<link|src=/);
    expect(html.match(/https?:\/\/[^"]*/g)?.every((url) => url === 'http://www.w3.org/2000/svg')).toBe(true);
    expect(existsSync(join(dir, 'latest', 'report.html'))).toBe(true);
  });
});
