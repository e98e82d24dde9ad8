import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import type { BenchRow } from '../run/median-run.js';
import type { Measurement } from '../run/measure.js';
import type { Skipped } from '../run/rounds.js';
import type { ThreadScaling } from '../ceiling/thread-scaling.js';
import type { Scenario } from '../scenarios.js';
import type { Comparison } from './comparison.js';
import { htmlReport } from './html.js';

export interface ResultsFile {
  readonly startedAt: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly kernel: string; readonly node: string };
  readonly settings: Readonly<Record<string, unknown>>;
  /** How well the machine itself scales the CPU-heavy handler over threads. */
  readonly ceiling: ThreadScaling;
  readonly scenarios: readonly Omit<Scenario, 'calls'>[];
  /** One row per server × scenario: the median run (see medianRun). */
  readonly rows: readonly BenchRow[];
  /** Every run, in the order they ran, when runs were repeated. */
  readonly runs: readonly Measurement[];
  readonly comparisons: readonly Comparison[];
  /** Server × scenario pairs that were not run, and why. */
  readonly skipped: readonly Skipped[];
}

function describeMachine(): ResultsFile['machine'] {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', kernel: release(), node: process.version };
}

export interface WrittenResults {
  readonly dir: string;
  readonly json: string;
  readonly html: string;
}

/**
 * Writes `<dir>/<stamp>/results.json` and `report.html` beside it; with `publish`, copies
 * both to `<dir>/latest/`, the copy the README links to.
 */
export function writeResults(
  dir: string,
  startedAt: Date,
  content: Omit<ResultsFile, 'startedAt' | 'machine' | 'scenarios'> & { readonly scenarios: readonly Scenario[] },
  publish = false,
): WrittenResults {
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const runDir = join(dir, stamp);
  mkdirSync(runDir, { recursive: true });
  // The call arguments are random bytes: the description says what they are.
  const scenarios = content.scenarios.map(({ calls: _calls, ...rest }) => rest);
  const results: ResultsFile = { ...content, startedAt: startedAt.toISOString(), machine: describeMachine(), scenarios };
  const json = join(runDir, 'results.json');
  const html = join(runDir, 'report.html');
  writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(html, htmlReport(results));
  if (publish) cpSync(runDir, join(dir, 'latest'), { recursive: true });
  return { dir: runDir, json, html };
}
