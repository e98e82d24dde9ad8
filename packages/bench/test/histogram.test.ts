import { describe, expect, it } from 'vitest';
import { bucketIndex, bucketUpperBound, Histogram } from '../src/load/histogram.js';

describe('Histogram', () => {
  it('keeps small values exact', () => {
    const h = new Histogram();
    for (let v = 1; v <= 100; v++) h.record(v);
    expect(h.summary()).toMatchObject({ count: 100, min: 1, p50: 50, p90: 90, p99: 99, max: 100 });
    expect(h.summary().mean).toBeCloseTo(50.5);
  });

  it('bounds the relative error of large values', () => {
    for (const v of [256, 257, 1000, 12_345, 999_999, 2 ** 31 + 7, 0xffff_ffff]) {
      const upper = bucketUpperBound(bucketIndex(v));
      expect(upper).toBeGreaterThanOrEqual(v);
      expect((upper - v) / v).toBeLessThan(1 / 128);
    }
  });

  it('maps consecutive buckets onto consecutive value ranges', () => {
    for (let i = 1; i < 3000; i++) {
      expect(bucketIndex(bucketUpperBound(i - 1) + 1)).toBe(i);
      expect(bucketIndex(bucketUpperBound(i))).toBe(i);
    }
  });

  it('reports tail percentiles and never more than the exact max', () => {
    const h = new Histogram();
    for (let i = 0; i < 9990; i++) h.record(100);
    for (let i = 0; i < 10; i++) h.record(50_000);
    const s = h.summary();
    expect(s.p99).toBe(100);
    expect(s.p999).toBe(100);
    expect(h.valueAt(0.9995)).toBe(50_000);
    expect(s.max).toBe(50_000);
  });

  it('is empty after reset', () => {
    const h = new Histogram();
    h.record(42);
    h.reset();
    expect(h.summary()).toMatchObject({ count: 0, min: 0, max: 0, p99: 0 });
  });
});
