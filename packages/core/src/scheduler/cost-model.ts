/**
 * Estimates what a request will cost a worker, per method, from the service times
 * workers report (the synchronous part of each call: the time it keeps the worker's
 * event loop busy). The dispatcher uses the estimates to keep cheap requests from
 * queueing inside a worker behind expensive ones.
 */
const SMOOTHING = 0.2;
/** What a method nobody has measured yet is assumed to cost. */
const UNKNOWN_METHOD_COST_US = 50;
/** Methods come from clients: past this many, the rest share one estimate. */
const MAX_METHODS = 256;

export class CostModel {
  private readonly estimates = new Map<string, number>();
  private sharedEstimate = UNKNOWN_METHOD_COST_US;

  estimateUs(method: string): number {
    return this.estimates.get(method) ?? this.sharedEstimate;
  }

  observe(method: string, serviceUs: number): void {
    const previous = this.estimates.get(method);
    if (previous === undefined && this.estimates.size >= MAX_METHODS) {
      this.sharedEstimate += SMOOTHING * (serviceUs - this.sharedEstimate);
      return;
    }
    this.estimates.set(method, previous === undefined ? serviceUs : previous + SMOOTHING * (serviceUs - previous));
  }
}
