/**
 * Log-linear latency histogram (HDR style) in whole units (fractions are dropped): below
 * 16 each value has its own bucket, above that each power of two is split into 16
 * buckets, so any reported percentile is within 1/16 (6.25 %) of the true value.
 * Recording is O(1) and allocation-free.
 */
const SUB_BUCKET_BITS = 4;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
const MAX_MAGNITUDE = 30;
const BUCKETS = (MAX_MAGNITUDE - SUB_BUCKET_BITS + 2) * SUB_BUCKETS;
const MAX_VALUE = 2 ** 31 - 1;

export interface Percentiles {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

function bucketOf(value: number): number {
  const v = Math.min(MAX_VALUE, Math.max(0, Math.floor(value)));
  if (v < SUB_BUCKETS) return v;
  const magnitude = 31 - Math.clz32(v);
  const shift = magnitude - SUB_BUCKET_BITS;
  return (shift + 1) * SUB_BUCKETS + ((v >>> shift) & (SUB_BUCKETS - 1));
}

/** Highest value that falls into the bucket: percentiles never under-report. */
function bucketUpperBound(index: number): number {
  if (index < SUB_BUCKETS) return index;
  const shift = Math.floor(index / SUB_BUCKETS) - 1;
  const sub = index % SUB_BUCKETS;
  return ((SUB_BUCKETS + sub + 1) << shift) - 1;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private sum = 0;
  private minValue = Number.POSITIVE_INFINITY;
  private maxValue = 0;

  record(value: number): void {
    this.counts[bucketOf(value)]++;
    this.total++;
    this.sum += value;
    if (value < this.minValue) this.minValue = value;
    if (value > this.maxValue) this.maxValue = value;
  }

  get count(): number {
    return this.total;
  }

  /** Value at or below which `percent` % of the recorded values lie. */
  percentile(percent: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((percent / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(bucketUpperBound(i), this.maxValue);
    }
    return this.maxValue;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    this.minValue = Math.min(this.minValue, other.minValue);
    this.maxValue = Math.max(this.maxValue, other.maxValue);
  }

  summary(): Percentiles {
    return {
      count: this.total,
      min: this.total ? this.minValue : 0,
      mean: this.total ? this.sum / this.total : 0,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: this.maxValue,
    };
  }
}
