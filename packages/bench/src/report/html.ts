/**
 * The bench's HTML report: per scenario, a bar chart of what it ranks servers by, a
 * latency-by-percentile chart, and the numbers. One self-contained file.
 */
import type { PercentileCurve } from '../load/load-generator.js';
import type { BenchRow } from '../run/median-run.js';
import { isKmux, type Comparison } from './comparison.js';
import type { ResultsFile } from './results-file.js';
import { barChart, escapeXml, percentileChart, type Bar } from './svg.js';
import { describeComparison, formatNumber, formatRatio } from './table.js';

/** Fixed colours per server, so a server looks the same in every chart. */
const COLORS: Record<string, string> = {
  kmux: '#1f6feb',
  'kmux-userspace': '#4f8fef',
  'kmux-sockmap': '#0a9396',
  'kmux-native': '#9b2226',
  'kmux-kcm': '#005f73',
  'kmux-protobuf': '#6a4c93',
  stock: '#8b949e',
  piscina: '#e36209',
  grpc: '#bf3989',
  'c-echo': '#24292f',
};
const colorOf = (server: string): string => COLORS[server] ?? '#57606a';

type ScenarioInfo = ResultsFile['scenarios'][number];

const METRIC = {
  throughput: { title: 'Requests per second (higher is better)', unit: 'req/s', value: (r: BenchRow) => r.requestsPerSecond },
  'focus-p99': { title: 'p99 latency of the fast calls (lower is better)', unit: 'µs', value: (r: BenchRow, s: ScenarioInfo) => focusClass(r, s)?.latency.p99 ?? NaN },
  'rss-per-connection': { title: 'Server memory per idle connection (lower is better)', unit: 'KiB', value: (r: BenchRow) => (r.rssPerConnectionBytes ?? NaN) / 1024 },
} as const;

function focusClass(row: BenchRow, scenario: ScenarioInfo) {
  return scenario.focus === undefined ? undefined : row.perClass.find((c) => c.label === scenario.focus);
}

/** Points for the percentile chart: the full curve when the generator sent one, else the summary. */
function curveOf(row: BenchRow, scenario: ScenarioInfo): PercentileCurve {
  const focus = focusClass(row, scenario);
  if (focus) return focus.curve ?? summaryCurve(focus.latency);
  return row.curve ?? summaryCurve(row.latencyUs);
}

function summaryCurve(l: BenchRow['latencyUs']): PercentileCurve {
  return [[0, l.min], [50, l.p50], [90, l.p90], [99, l.p99], [99.9, l.p999], [100, l.max]];
}

function section(scenario: ScenarioInfo, rows: readonly BenchRow[], comparisons: readonly Comparison[], skipped: ResultsFile['skipped']): string {
  const metric = METRIC[scenario.metric];
  const kmuxRow = rows.find((r) => r.server === 'kmux');
  const bars: Bar[] = rows.map((r) => {
    const c = kmuxRow && r.server !== 'kmux' ? comparisons.find((x) => x.subject === 'kmux' && x.peer === r.server) : undefined;
    return { label: r.server, value: metric.value(r, scenario), color: colorOf(r.server), note: c ? (c.ratio >= 1 ? `kmux ${formatRatio(c.ratio)} better` : `kmux ${formatRatio(1 / c.ratio)} worse`) : undefined };
  });
  const latencyTitle = scenario.focus ? `Latency of the ${scenario.focus} calls by percentile` : 'Latency by percentile';
  const series = rows.map((r) => ({ label: r.server, color: colorOf(r.server), points: curveOf(r, scenario) }));
  const missing = skipped.filter((s) => s.scenario === scenario.name);
  return `<section>
<h2>${escapeXml(scenario.name)}</h2>
<p>${escapeXml(scenario.description)}</p>
<div class="charts">${barChart(metric.title, metric.unit, bars)}${percentileChart(latencyTitle, series)}</div>
${numbersTable(scenario, rows, comparisons)}
${missing.length ? `<p class="note">Not run: ${missing.map((s) => `${escapeXml(s.server)} (${escapeXml(s.reason)})`).join('; ')}.</p>` : ''}
</section>`;
}

function numbersTable(scenario: ScenarioInfo, rows: readonly BenchRow[], comparisons: readonly Comparison[]): string {
  const peers = [...new Set(comparisons.filter((c) => c.scenario === scenario.name).map((c) => c.peer))];
  const prefix = scenario.focus ? `${scenario.focus} ` : '';
  const idle = scenario.load.kind === 'idle';
  const head = ['server', 'req/s', `${prefix}p50 µs`, `${prefix}p99 µs`, `${prefix}p99.9 µs`, `${prefix}max µs`, 'errors', 'lost',
    ...(idle ? ['KiB/conn'] : []), 'server CPU %', 'generator CPU %', ...peers.map((p) => `kmux vs ${p}`)];
  const body = rows.map((r) => {
    const l = focusClass(r, scenario)?.latency ?? r.latencyUs;
    const vs = (peer: string) => {
      const c = isKmux(r.server) ? comparisons.find((x) => x.scenario === scenario.name && x.subject === r.server && x.peer === peer) : undefined;
      if (!c) return '<td></td>';
      return `<td class="${c.met === false ? 'missed' : c.ratio >= 1 ? 'ahead' : 'behind'}">${escapeXml(describeComparison(c))}</td>`;
    };
    const cells = [formatNumber(r.requestsPerSecond), formatNumber(l.p50), formatNumber(l.p99), formatNumber(l.p999), formatNumber(l.max),
      formatNumber(r.errors), formatNumber(r.lost), ...(idle ? [formatNumber((r.rssPerConnectionBytes ?? NaN) / 1024, 1)] : []),
      formatNumber(r.serverCpuPercent), formatNumber(r.generatorCpuPercent)];
    return `<tr><th><span class="dot" style="background:${colorOf(r.server)}"></span>${escapeXml(r.server)}</th>${cells.map((c) => `<td>${c}</td>`).join('')}${peers.map(vs).join('')}</tr>`;
  });
  return `<table><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${body.join('')}</tbody></table>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1180px;color:#1f2328;padding:0 1rem}
h1{margin-bottom:.2rem}.meta{color:#57606a;margin-top:0}section{border-top:1px solid #d0d7de;padding-top:.5rem;margin-top:1.5rem}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}table{border-collapse:collapse;margin-top:.8rem;font-size:13px}
th,td{padding:3px 9px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}thead th{background:#f6f8fa}
tbody th{text-align:left;font-weight:500}.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px}
.ahead{color:#1a7f37}.behind{color:#9a6700}.missed{color:#cf222e;font-weight:600}.note{color:#57606a;font-size:13px}`;

export function htmlReport(results: ResultsFile): string {
  const { machine, ceiling, settings } = results;
  const sections = results.scenarios.map((s) =>
    section(s, results.rows.filter((r) => r.scenario === s.name), results.comparisons.filter((c) => c.scenario === s.name), results.skipped),
  );
  const meta = `${machine.cpus} × ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.node} · ${results.startedAt}`;
  const run = `${String(settings.warmupSeconds)} s warm-up + ${String(settings.durationSeconds)} s measured per run, ${String(settings.repeat)} round(s), kmux with ${String(settings.workers)} workers`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kmux bench ${escapeXml(results.startedAt)}</title><style>${STYLE}</style></head>
<body>
<h1>kmux benchmark</h1>
<p class="meta">${escapeXml(meta)}<br>${escapeXml(run)}</p>
<p class="note">Ratios are kmux's advantage on each scenario's measure (&gt; 1: kmux did better); "~" marks ratios from rounds that other
load on the machine disturbed. Ceiling: ${ceiling.threads} threads run the CPU-heavy handler ${formatNumber(ceiling.ratio, 2)}× as fast as one with no
server at all — the most any server can gain over a single-threaded one in cpu-1ms here.</p>
${sections.join('\n')}
</body></html>
`;
}
