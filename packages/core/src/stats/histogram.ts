/**
 * Log-linear latency histogram (HDR style) in whole units (fractions are dropped): below
 * 2^precisionBits each value has its own bucket, above that each power of two is split
 * into 2^precisionBits buckets, so a reported percentile is within 1/2^precisionBits of
 * the true value (6.25 % at the default 4 bits; the load generator uses 7 bits, 0.8 %).
 * Recording is O(1) and allocation-free.
 */
const MAX_MAGNITUDE = 30;
const MAX_VALUE = 2 ** (MAX_MAGNITUDE + 1) - 1;

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

/** A histogram as plain data, to post between threads (structured-clonable). */
export interface HistogramData {
  readonly counts: Float64Array;
  readonly total: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
}

export class Histogram {
  private readonly subBuckets: number;
  private readonly counts: Float64Array;
  private total = 0;
  private sum = 0;
  private minValue = Number.POSITIVE_INFINITY;
  private maxValue = 0;

  constructor(private readonly precisionBits = 4) {
    if (!Number.isInteger(precisionBits) || precisionBits < 1 || precisionBits > 16) {
      throw new RangeError(`precisionBits must be an integer from 1 to 16, got ${precisionBits}`);
    }
    this.subBuckets = 1 << precisionBits;
    this.counts = new Float64Array((MAX_MAGNITUDE + 2 - precisionBits) * this.subBuckets);
  }

  record(value: number): void {
    this.counts[this.bucketOf(value)]++;
    this.total++;
    this.sum += value;
    if (value < this.minValue) this.minValue = value;
    if (value > this.maxValue) this.maxValue = value;
  }

  get count(): number {
    return this.total;
  }

  /** Forgets everything recorded (e.g. a benchmark's warm-up). */
  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
    this.minValue = Number.POSITIVE_INFINITY;
    this.maxValue = 0;
  }

  /** Value at or below which `percent` % of the recorded values lie. */
  percentile(percent: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((percent / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.bucketUpperBound(i), this.maxValue);
    }
    return this.maxValue;
  }

  merge(other: Histogram): void {
    this.mergeData(other.toData());
  }

  /** The recorded values as data: what a worker thread posts to the main thread. */
  toData(): HistogramData {
    return { counts: this.counts, total: this.total, sum: this.sum, min: this.minValue, max: this.maxValue };
  }

  mergeData(other: HistogramData): void {
    if (other.counts.length !== this.counts.length) {
      throw new RangeError('cannot merge histograms of different precision');
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    this.minValue = Math.min(this.minValue, other.min);
    this.maxValue = Math.max(this.maxValue, other.max);
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

  private bucketOf(value: number): number {
    const v = Math.min(MAX_VALUE, Math.max(0, Math.floor(value)));
    if (v < this.subBuckets) return v;
    const shift = 31 - Math.clz32(v) - this.precisionBits;
    return (shift + 1) * this.subBuckets + ((v >>> shift) & (this.subBuckets - 1));
  }

  /** Highest value that falls into the bucket: percentiles never under-report. */
  private bucketUpperBound(index: number): number {
    if (index < this.subBuckets) return index;
    const shift = Math.floor(index / this.subBuckets) - 1;
    const sub = index % this.subBuckets;
    return (this.subBuckets + sub + 1) * 2 ** shift - 1;
  }
}
