import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Histogram } from '@kmux/core';
import { LOADGEN } from '../src/load/native-load.js';

/** The generator's histogram of `values` (kmux-loadgen --histogram), in core's form. */
function generatorHistogram(values: readonly number[]): Histogram {
  const out = JSON.parse(execFileSync(LOADGEN, ['--histogram'], { input: values.join('\n'), encoding: 'utf8' })) as {
    total: number;
    sum: number;
    min: number;
    max: number;
    buckets: [number, number][];
  };
  const histogram = new Histogram(7);
  const counts = new Float64Array(histogram.toData().counts.length);
  for (const [index, count] of out.buckets) counts[index] = count;
  histogram.mergeData({ counts, total: out.total, sum: out.sum, min: out.min, max: out.max });
  return histogram;
}

describe('the native generator histogram', () => {
  // Every bucket boundary region: exact values below 128, then powers of two and their neighbours.
  const values = [
    ...Array.from({ length: 300 }, (_, i) => i),
    ...Array.from({ length: 30 }, (_, k) => [2 ** k - 1, 2 ** k, 2 ** k + 1]).flat(),
    ...Array.from({ length: 5000 }, (_, i) => Math.floor(1000 * 1.003 ** i)),
  ].filter((v) => v < 2 ** 31);

  it('puts every value in the bucket @kmux/core would', () => {
    const native = generatorHistogram(values).toData();
    const core = new Histogram(7);
    for (const v of values) core.record(v);
    expect(Array.from(native.counts)).toEqual(Array.from(core.toData().counts));
    expect(native.total).toBe(values.length);
  });

  it('reports percentiles within 1/128 of the exact ones', () => {
    const sorted = [...values].sort((a, b) => a - b);
    const histogram = generatorHistogram(values);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
      const reported = histogram.percentile(p);
      expect(reported).toBeGreaterThanOrEqual(exact);
      expect(reported).toBeLessThanOrEqual(exact * (1 + 1 / 128) + 1);
    }
    expect(histogram.summary().max).toBe(sorted.at(-1));
  });
});
