/**
 * Coverage feedback for the fuzz engine from V8's own block coverage, read through the
 * inspector of the thread the engine runs in: no native fuzzer, no instrumenting loader.
 * A feature is one block of a target file that ran. Hit counts are left out: inputs run
 * in batches between reads, and a batch's summed counts would make every larger batch
 * look new.
 */
import { Session } from 'node:inspector';

/** The count of the innermost range holding `offset` (0 outside all of them). */
function countAt(ranges, offset) {
  let best = null;
  for (const range of ranges) {
    if (range.startOffset <= offset && offset < range.endOffset && (!best || range.endOffset - range.startOffset < best.endOffset - best.startOffset)) {
      best = range;
    }
  }
  return best ? best.count : 0;
}

export class Coverage {
  /** @param {string[]} includes substrings of the script URLs to count (the code under test) */
  constructor(includes) {
    this.includes = includes;
    this.session = new Session();
    this.session.connect();
    this.post('Profiler.enable');
    // callCount + detailed: per-block execution counts, reset by every take.
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
    this.seen = new Set();
    this.urls = new Map();
    /** Function key → start offsets of its blocks seen so far. */
    this.blockStarts = new Map();
  }

  post(method, params) {
    let failure;
    let value;
    // A session on the thread's own inspector answers synchronously.
    this.session.post(method, params, (error, result) => {
      failure = error;
      value = result;
    });
    if (failure) throw failure;
    return value;
  }

  /** Features reached since the last call (counters reset as they are read). */
  take() {
    const features = [];
    for (const script of this.post('Profiler.takePreciseCoverage').result) {
      let id = this.urls.get(script.url);
      if (id === undefined) {
        id = this.includes.some((part) => script.url.includes(part)) ? this.urls.size : -1;
        this.urls.set(script.url, id);
      }
      if (id < 0) continue;
      for (const fn of script.functions) {
        const ranges = fn.ranges;
        if (ranges.length === 0) continue;
        // V8 merges a block into its parent whenever their counts are equal, so the ranges
        // it reports vary with the counts. Every block start ever reported is remembered,
        // and each is looked up in this take by the innermost range holding it.
        const key = `${id}:${ranges[0].startOffset}`;
        let starts = this.blockStarts.get(key);
        if (!starts) this.blockStarts.set(key, (starts = new Set()));
        for (const range of ranges) starts.add(range.startOffset);
        for (const start of starts) {
          if (countAt(ranges, start) > 0) features.push(`${key}:${start}`);
        }
      }
    }
    return features;
  }

  /** How many of `features` were never seen before; remembers them. */
  novel(features) {
    let fresh = 0;
    for (const feature of features) {
      if (!this.seen.has(feature)) {
        this.seen.add(feature);
        fresh++;
      }
    }
    return fresh;
  }

  /** Whether any of `features` is new, without remembering. */
  hasNovel(features) {
    return features.some((feature) => !this.seen.has(feature));
  }

  /** Script URLs counted as code under test. */
  get countedScripts() {
    return [...this.urls].filter(([, id]) => id >= 0).map(([url]) => url);
  }

  stop() {
    this.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }
}
