/**
 * Which per-method series a request is counted in. Method names come from clients, so they
 * must not be able to create series at will: when the codec declares its methods (an IDL),
 * only those get a series and every other name goes to UNKNOWN_METHOD; a codec without an
 * IDL (raw, custom) gets the first MAX_TRACKED_METHODS names, then OTHER_METHODS.
 */
export const UNKNOWN_METHOD = '<unknown>';
export const MAX_TRACKED_METHODS = 256;
export const OTHER_METHODS = '<other>';

export class MethodSeries {
  private declared: ReadonlySet<string> | null = null;

  /** The service's methods, once known (from the first worker's codec); null: no IDL. */
  declare(methods: readonly string[] | undefined): void {
    this.declared = methods ? new Set(methods) : null;
  }

  /** The series `method` is counted in, given the series that exist already. */
  name(method: string, existing: ReadonlyMap<string, unknown>): string {
    if (this.declared) return this.declared.has(method) ? method : UNKNOWN_METHOD;
    return existing.has(method) || existing.size < MAX_TRACKED_METHODS ? method : OTHER_METHODS;
  }
}
