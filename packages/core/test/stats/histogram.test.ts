import { describe, expect, it } from 'vitest';
import { Histogram } from '@kmux/core';
import { prng } from '../random.js';

const PERCENTS = [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 100];

/** The true percentile: the value at rank ceil(p% of n) of the sorted values. */
function truePercentile(sorted: number[], percent: number): number {
  return sorted[Math.max(1, Math.ceil((percent / 100) * sorted.length)) - 1]!;
}

function check(values: number[], precisionBits = 4): Histogram {
  const histogram = new Histogram(precisionBits);
  for (const value of values) histogram.record(value);
  const sorted = [...values].sort((a, b) => a - b);
  for (const percent of PERCENTS) {
    const truth = truePercentile(sorted, percent);
    const reported = histogram.percentile(percent);
    // Within 1/2^bits of the truth, and never below it (bucket upper bounds, integer values).
    expect(reported, `p${percent} of ${values.length} values`).toBeGreaterThanOrEqual(truth);
    expect(reported - truth, `p${percent}: reported ${reported}, true ${truth}`).toBeLessThanOrEqual(truth / 2 ** precisionBits);
  }
  const summary = histogram.summary();
  expect(summary.count).toBe(values.length);
  expect(summary.min).toBe(sorted[0]);
  expect(summary.max).toBe(sorted.at(-1));
  expect(summary.mean).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 6);
  return histogram;
}

describe('Histogram', () => {
  const random = prng(1234);

  it('is exact below 16', () => {
    const histogram = check([0, 1, 2, 3, 5, 8, 13, 15, 15, 15]);
    expect(histogram.percentile(50)).toBe(5);
    expect(histogram.percentile(10)).toBe(0);
  });

  it('stays within 1/16 on a uniform distribution', () => {
    const values = Array.from({ length: 100_000 }, (_, i) => i + 1);
    const histogram = check(values);
    expect(histogram.percentile(50)).toBeGreaterThanOrEqual(50_000);
  });

  it('stays within 1/16 on exponential and log-uniform distributions', () => {
    check(Array.from({ length: 50_000 }, () => Math.floor(-Math.log(1 - random.next()) * 2000)));
    check(Array.from({ length: 50_000 }, () => Math.floor(2 ** (random.next() * 30))));
  });

  it('stays within 1/16 on a bimodal latency-like distribution with a long tail', () => {
    const values = Array.from({ length: 20_000 }, () => {
      const roll = random.next();
      return roll < 0.9 ? random.int(40, 60) : roll < 0.999 ? random.int(900, 1100) : random.int(100_000, 2_000_000);
    });
    check(values);
  });

  it('reports zeros when empty', () => {
    const histogram = new Histogram();
    expect(histogram.count).toBe(0);
    expect(histogram.percentile(50)).toBe(0);
    expect(histogram.summary()).toEqual({ count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
  });

  it('merges into the same result as recording everything in one', () => {
    const a = Array.from({ length: 5000 }, () => random.int(10, 1000));
    const b = Array.from({ length: 3000 }, () => random.int(5000, 90_000));
    const left = new Histogram();
    const right = new Histogram();
    const all = new Histogram();
    for (const v of a) left.record(v), all.record(v);
    for (const v of b) right.record(v), all.record(v);
    left.merge(right);
    expect(left.summary()).toEqual(all.summary());
    for (const percent of PERCENTS) expect(left.percentile(percent)).toBe(all.percentile(percent));
    expect(left.summary().min).toBe(Math.min(...a, ...b));
    expect(left.summary().max).toBe(Math.max(...a, ...b));
  });

  it('merges with an empty histogram either way round', () => {
    const full = new Histogram();
    for (const v of [3, 30, 300]) full.record(v);
    const before = full.summary();
    full.merge(new Histogram());
    expect(full.summary()).toEqual(before);
    const empty = new Histogram();
    empty.merge(full);
    expect(empty.summary()).toEqual(before);
  });
});

describe('Histogram precision and reset', () => {
  it('keeps percentiles within 1/128 at 7 bits of precision', () => {
    const random = prng(7);
    check(Array.from({ length: 20_000 }, () => Math.floor(Math.exp(random.next() * 14))), 7);
  });

  it('refuses to merge histograms of different precision', () => {
    expect(() => new Histogram(4).merge(new Histogram(7))).toThrow(RangeError);
  });

  it('is empty after reset', () => {
    const histogram = new Histogram();
    histogram.record(42);
    histogram.reset();
    expect(histogram.summary()).toMatchObject({ count: 0, min: 0, max: 0, p99: 0 });
  });
});

describe('Histogram in given memory', () => {
  it('counts from zeroed memory on, and another Histogram on the same memory reads it', () => {
    const memory = new Float64Array(new SharedArrayBuffer(Histogram.words() * Float64Array.BYTES_PER_ELEMENT));
    const writer = new Histogram(4, memory);
    const reader = new Histogram(4, memory);
    expect(reader.summary()).toEqual(new Histogram().summary());
    const own = new Histogram();
    for (const v of [5, 17, 300, 4000, 2]) writer.record(v), own.record(v);
    expect(reader.summary()).toEqual(own.summary());
    expect(reader.toData()).toEqual(own.toData());
  });

  it('refuses memory of another size', () => {
    expect(() => new Histogram(4, new Float64Array(Histogram.words(7)))).toThrow(RangeError);
  });
});
