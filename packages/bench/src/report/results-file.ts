import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import type { BenchRow } from '../run/median-run.js';
import type { Measurement } from '../run/measure.js';
import type { ThreadScaling } from '../ceiling/thread-scaling.js';
import type { Comparison } from './comparison.js';

export interface ResultsFile {
  readonly startedAt: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly kernel: string; readonly node: string };
  readonly settings: Readonly<Record<string, unknown>>;
  /** How well the machine itself scales the CPU-heavy handler over threads. */
  readonly ceiling: ThreadScaling;
  readonly scenarios: readonly { readonly name: string; readonly description: string; readonly targetRatio: number }[];
  /** One row per server × scenario: the median run (see medianRun). */
  readonly rows: readonly BenchRow[];
  /** Every run, in the order they ran, when runs were repeated. */
  readonly runs: readonly Measurement[];
  readonly comparisons: readonly Comparison[];
}

function describeMachine(): ResultsFile['machine'] {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', kernel: release(), node: process.version };
}

/** Writes `<dir>/<stamp>/results.json` and returns its path. */
export function writeResults(dir: string, startedAt: Date, content: Omit<ResultsFile, 'startedAt' | 'machine'>): string {
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const runDir = join(dir, stamp);
  mkdirSync(runDir, { recursive: true });
  const file = join(runDir, 'results.json');
  const scenarios = content.scenarios.map(({ name, description, targetRatio }) => ({ name, description, targetRatio }));
  const results: ResultsFile = { startedAt: startedAt.toISOString(), machine: describeMachine(), ...content, scenarios };
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}
