import type { BenchRow } from '../run/median-run.js';
import type { Comparison } from './comparison.js';

const number = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';

/** Renders rows as a fixed-width text table: the first `textColumns` left-aligned, the numbers after right-aligned. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[], textColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * The benchmark table: one line per server × scenario (the median run when repeated, with
 * the range of all runs), kmux lines carry the ratio to stock.
 */
export function resultsTable(rows: readonly BenchRow[], comparisons: readonly Comparison[]): string {
  const repeated = rows.some((r) => r.runsRequestsPerSecond.length > 1);
  const header = ['scenario', 'server', 'C×D', 'req/s', ...(repeated ? ['runs req/s', 'clean'] : []), 'p50 µs', 'p99 µs', 'p99.9 µs', 'errors', 'lost', 'srv CPU%', 'srv CPU µs/req', 'gen CPU%', 'other CPU%', 'kmux/stock'];
  const body = rows.map((r) => {
    const comparison = r.server === 'kmux' ? comparisons.find((c) => c.scenario === r.scenario) : undefined;
    return [
      r.scenario,
      r.server,
      `${r.connections}×${r.depth}`,
      number(r.requestsPerSecond),
      ...(repeated ? [`${number(Math.min(...r.runsRequestsPerSecond))}–${number(Math.max(...r.runsRequestsPerSecond))}`, `${r.cleanRuns}/${r.runsRequestsPerSecond.length}`] : []),
      number(r.latencyUs.p50),
      number(r.latencyUs.p99),
      number(r.latencyUs.p999),
      number(r.errors),
      number(r.lost),
      number(r.serverCpuPercent),
      // CPU per request is much less sensitive to other load on the machine than req/s.
      number((r.serverCpuPercent * 1e4) / r.requestsPerSecond, 1),
      number(r.generatorCpuPercent),
      number(r.otherCpuPercent),
      comparison ? describeComparison(comparison) : '',
    ];
  });
  return textTable(header, body, 2);
}

function describeComparison(c: Comparison): string {
  const verdict = c.met ? 'met' : 'MISSED';
  const basis = c.clean ? '' : ', disturbed';
  return `${number(c.ratio, 2)}× (≥${c.target}: ${verdict}${basis})`;
}
