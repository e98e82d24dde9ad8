/**
 * HDR-style log-linear latency histogram over integer microseconds.
 *
 * Values below SUB_BUCKETS are counted exactly; above that, every power of two is cut
 * into HALF linear sub-buckets, so any recorded value is known to within 1/HALF (<0.8%)
 * of itself. Recording is an index computation and one increment: cheap enough for the
 * load generator's hot path.
 */
const SUB_BUCKET_BITS = 8;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
const HALF = SUB_BUCKETS >>> 1;
/** Largest recordable value; larger ones are clamped (about 71 minutes). */
const MAX_TRACKABLE_MICROS = 0xffff_ffff;
const BUCKET_COUNT = SUB_BUCKETS + (32 - SUB_BUCKET_BITS) * HALF;

/** Percentiles the reports print, in microseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export function bucketIndex(micros: number): number {
  if (micros < SUB_BUCKETS) return micros;
  const shift = 31 - Math.clz32(micros) - (SUB_BUCKET_BITS - 1);
  return SUB_BUCKETS + (shift - 1) * HALF + ((micros >>> shift) - HALF);
}

/** The highest value that lands in bucket `index` (what HDR calls "highest equivalent"). */
export function bucketUpperBound(index: number): number {
  if (index < SUB_BUCKETS) return index;
  const shift = Math.floor((index - SUB_BUCKETS) / HALF) + 1;
  const sub = ((index - SUB_BUCKETS) % HALF) + HALF;
  return (sub + 1) * 2 ** shift - 1;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  private total = 0;
  private sum = 0;
  private minValue = Number.POSITIVE_INFINITY;
  private maxValue = 0;

  get count(): number {
    return this.total;
  }

  /** Records one value in microseconds; fractions are dropped, negatives count as 0. */
  record(micros: number): void {
    const value = micros <= 0 ? 0 : Math.min(Math.floor(micros), MAX_TRACKABLE_MICROS);
    this.counts[bucketIndex(value)]++;
    this.total++;
    this.sum += value;
    if (value < this.minValue) this.minValue = value;
    if (value > this.maxValue) this.maxValue = value;
  }

  /** Value at quantile q (0..1): the bucket's upper bound, but never above the exact max. */
  valueAt(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(bucketUpperBound(i), this.maxValue);
    }
    return this.maxValue;
  }

  summary(): LatencySummary {
    return {
      count: this.total,
      min: this.total === 0 ? 0 : this.minValue,
      mean: this.total === 0 ? 0 : this.sum / this.total,
      p50: this.valueAt(0.5),
      p90: this.valueAt(0.9),
      p99: this.valueAt(0.99),
      p999: this.valueAt(0.999),
      max: this.maxValue,
    };
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
    this.minValue = Number.POSITIVE_INFINITY;
    this.maxValue = 0;
  }
}
