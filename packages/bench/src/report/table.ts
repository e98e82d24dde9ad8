import type { PeerName } from '../peers/spawn-peer.js';
import type { BenchRow } from '../run/median-run.js';
import type { Scenario } from '../scenarios.js';
import { isKmux, type Comparison } from './comparison.js';

export const formatNumber = (n: number | undefined, digits = 0): string =>
  n !== undefined && Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';

/** Renders rows as a fixed-width text table: the first `textColumns` left-aligned, the numbers after right-aligned. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[], textColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A ratio to two significant digits (0.052×, 1.9×, 21×), so that small ones do not read as 0. */
export const formatRatio = (ratio: number): string => (Number.isFinite(ratio) ? `${Number(ratio.toPrecision(2))}×` : '-');

/** How the scenario loaded this server: C×D, the open-loop rate, or the idle connections. */
export function describeLoad(scenario: Scenario, row: BenchRow): string {
  const { load } = scenario;
  if (load.kind === 'closed') return `${load.connections}×${load.depth}`;
  if (load.kind === 'idle') return `${formatNumber(load.connections)} idle`;
  if (load.kind === 'fixed-rate') return `${formatNumber(row.offeredPerSecond)}/s`;
  return `${formatNumber(row.offeredPerSecond)}/s of ${formatNumber(row.capacityPerSecond)}`;
}

/** A comparison as a table cell: "1.9×", with the target when there is one ("1.9× ≥1.8 ok"). */
export function describeComparison(c: Comparison): string {
  const basis = c.clean ? '' : '~';
  const verdict = c.target === null ? '' : ` ≥${Number(c.target.toPrecision(2))} ${c.met ? 'ok' : 'MISSED'}`;
  return `${basis}${formatRatio(c.ratio)}${verdict}`;
}

/**
 * One scenario's table: a line per server (the median run when repeated), the latency
 * columns of the scenario's focus class when it has one, and on kmux lines the advantage
 * over each other server ("~" when no round was clean).
 */
export function scenarioTable(scenario: Scenario, rows: readonly BenchRow[], comparisons: readonly Comparison[]): string {
  const repeated = rows.some((r) => r.runsRequestsPerSecond.length > 1);
  const peers = [...new Set(comparisons.map((c) => c.peer))];
  const focus = scenario.focus;
  const others = rows[0]?.perClass.filter((c) => c.label !== focus && focus !== undefined).map((c) => c.label) ?? [];
  const latencyOf = (r: BenchRow) => (focus ? r.perClass.find((c) => c.label === focus)?.latency : undefined) ?? r.latencyUs;
  const prefix = focus ? `${focus} ` : '';
  const idle = scenario.load.kind === 'idle';
  const header = [
    'server',
    'load',
    'req/s',
    ...(repeated ? ['runs req/s', 'clean'] : []),
    `${prefix}p50 µs`,
    `${prefix}p99 µs`,
    `${prefix}p99.9 µs`,
    `${prefix}max µs`,
    ...others.map((label) => `${label} p99 µs`),
    'errors',
    'lost',
    ...(idle ? ['RSS MiB', 'KiB/conn'] : []),
    'srv CPU%',
    'srv µs/req',
    'sys/req',
    'main sys/req',
    'vcsw/req',
    'gen CPU%',
    'other CPU%',
    ...peers.map((p) => `vs ${p}`),
  ];
  const body = rows.map((r) => {
    const latency = latencyOf(r);
    const vs = (peer: PeerName) => {
      const c = isKmux(r.server) ? comparisons.find((x) => x.subject === r.server && x.peer === peer) : undefined;
      return c ? describeComparison(c) : '';
    };
    return [
      r.server,
      describeLoad(scenario, r),
      formatNumber(r.requestsPerSecond),
      ...(repeated ? [`${formatNumber(Math.min(...r.runsRequestsPerSecond))}–${formatNumber(Math.max(...r.runsRequestsPerSecond))}`, `${r.cleanRuns}/${r.runsRequestsPerSecond.length}`] : []),
      formatNumber(latency.p50),
      formatNumber(latency.p99),
      formatNumber(latency.p999),
      formatNumber(latency.max),
      ...others.map((label) => formatNumber(r.perClass.find((c) => c.label === label)?.latency.p99)),
      formatNumber(r.errors),
      formatNumber(r.lost),
      ...(idle ? [formatNumber((r.rssBytes ?? NaN) / 2 ** 20, 1), formatNumber((r.rssPerConnectionBytes ?? NaN) / 1024, 1)] : []),
      formatNumber(r.serverCpuPercent),
      // CPU per request is much less sensitive to other load on the machine than req/s.
      idle ? '-' : formatNumber((r.serverCpuPercent * 1e4) / r.requestsPerSecond, 1),
      // Per request, counted per thread by perf and /proc (cpu/thread-work.ts): work strace would distort.
      ...[r.serverWork.syscalls, r.serverWork.mainSyscalls, r.serverWork.voluntarySwitches].map((n) => (idle ? '-' : formatNumber(n / r.requests, 2))),
      formatNumber(r.generatorCpuPercent),
      formatNumber(r.otherCpuPercent),
      ...peers.map(vs),
    ];
  });
  return textTable(header, body, 2);
}
