import { Histogram } from '@kmux/core';

/** 1/128 precision: benchmark percentiles are compared across servers. */
const PRECISION_BITS = 7;
import type { RequestTemplate } from './request-template.js';

/**
 * Counts and latencies of every reply in one generator process, overall and per request
 * template. `reset()` at the end of the warm-up discards everything recorded before.
 */
export class LoadRecorder {
  readonly overall = new Histogram(PRECISION_BITS);
  readonly perTemplate: Histogram[];
  readonly errorsPerTemplate: number[];
  errors = 0;

  constructor(readonly templates: readonly RequestTemplate[]) {
    this.perTemplate = templates.map(() => new Histogram(PRECISION_BITS));
    this.errorsPerTemplate = templates.map(() => 0);
  }

  get completed(): number {
    return this.overall.count;
  }

  record(template: number, micros: number, failed: boolean): void {
    this.overall.record(micros);
    this.perTemplate[template].record(micros);
    if (failed) {
      this.errors++;
      this.errorsPerTemplate[template]++;
    }
  }

  reset(): void {
    this.overall.reset();
    for (const h of this.perTemplate) h.reset();
    this.errorsPerTemplate.fill(0);
    this.errors = 0;
  }
}
