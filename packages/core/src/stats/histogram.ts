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

/**
 * A histogram's Float64 words: count, sum, min and max (min only once count > 0, so that
 * zeroed memory is an empty histogram), then one word per bucket.
 */
const COUNT = 0;
const SUM = 1;
const MIN = 2;
const MAX = 3;
const HEADER = 4;

export class Histogram {
  /** The words a histogram of `precisionBits` takes: the size of memory to give the constructor. */
  static words(precisionBits = 4): number {
    return HEADER + (MAX_MAGNITUDE + 2 - precisionBits) * (1 << precisionBits);
  }

  private readonly subBuckets: number;
  private readonly words: Float64Array;

  /**
   * `words`: the memory to count in, zeroed or another Histogram's of the same precision, e.g.
   * shared with a thread that reads what this one records; by default memory of its own.
   */
  constructor(
    private readonly precisionBits = 4,
    words?: Float64Array,
  ) {
    if (!Number.isInteger(precisionBits) || precisionBits < 1 || precisionBits > 16) {
      throw new RangeError(`precisionBits must be an integer from 1 to 16, got ${precisionBits}`);
    }
    this.subBuckets = 1 << precisionBits;
    const size = Histogram.words(precisionBits);
    if (words && words.length !== size) throw new RangeError(`a histogram of ${precisionBits} bits takes ${size} words, got ${words.length}`);
    this.words = words ?? new Float64Array(size);
  }

  record(value: number): void {
    const words = this.words;
    words[HEADER + this.bucketOf(value)]++;
    if (words[COUNT] === 0 || value < words[MIN]!) words[MIN] = value;
    if (value > words[MAX]!) words[MAX] = value;
    words[SUM] += value;
    words[COUNT]++;
  }

  get count(): number {
    return this.words[COUNT]!;
  }

  /** Forgets everything recorded (e.g. a benchmark's warm-up). */
  reset(): void {
    this.words.fill(0);
  }

  /** Value at or below which `percent` % of the recorded values lie. */
  percentile(percent: number): number {
    const { words } = this;
    if (words[COUNT] === 0) return 0;
    const rank = Math.max(1, Math.ceil((percent / 100) * words[COUNT]!));
    let seen = 0;
    for (let i = HEADER; i < words.length; i++) {
      seen += words[i]!;
      if (seen >= rank) return Math.min(this.bucketUpperBound(i - HEADER), words[MAX]!);
    }
    return words[MAX]!;
  }

  merge(other: Histogram): void {
    this.mergeData(other.toData());
  }

  /** A copy of the recorded values as data, to post to another thread or process. */
  toData(): HistogramData {
    const { words } = this;
    const count = words[COUNT]!;
    return { counts: words.slice(HEADER), total: count, sum: words[SUM]!, min: count ? words[MIN]! : Infinity, max: words[MAX]! };
  }

  mergeData(other: HistogramData): void {
    const { words } = this;
    if (other.counts.length !== words.length - HEADER) {
      throw new RangeError('cannot merge histograms of different precision');
    }
    if (other.total === 0) return;
    for (let i = 0; i < other.counts.length; i++) words[HEADER + i]! += other.counts[i]!;
    words[MIN] = words[COUNT] === 0 ? other.min : Math.min(words[MIN]!, other.min);
    words[MAX] = Math.max(words[MAX]!, other.max);
    words[SUM] += other.sum;
    words[COUNT] += other.total;
  }

  summary(): Percentiles {
    const { words } = this;
    const count = words[COUNT]!;
    return {
      count,
      min: count ? words[MIN]! : 0,
      mean: count ? words[SUM]! / count : 0,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: words[MAX]!,
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
