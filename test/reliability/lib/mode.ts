/**
 * One code path, two sizes. The CI mode (the default, `npm test`) runs every reliability
 * and fuzz suite at a size that takes seconds; the soak mode (`KMUX_SOAK=1`, which
 * `npm run test:soak` sets) runs the same tests at the sizes the guarantees are stated
 * for. Individual numbers can be overridden with their own variables for a run in between.
 */
import { appendFileSync } from 'node:fs';
import { it } from 'vitest';

export const SOAK = process.env.KMUX_SOAK === '1';

/** The CI or soak value, or the integer in `process.env[override]` when that is set. */
export function sized(ci: number, soak: number, override?: string): number {
  const raw = override ? process.env[override] : undefined;
  if (raw !== undefined && raw !== '') {
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${override} must be a positive number, got '${raw}'`);
    return value;
  }
  return SOAK ? soak : ci;
}

/** Per-test timeout: generous in CI, hours in soak mode. */
export function timeoutMs(ci: number, soak = 60 * 60_000): number {
  return SOAK ? soak : ci;
}

/**
 * Transports every reliability suite runs on: `KMUX_TRANSPORTS=userspace,kcm` runs them
 * on each in turn. Only the user-space transport exists outside test/kernel today.
 */
export const TRANSPORTS: readonly ('userspace' | 'kcm' | 'sockmap')[] = (process.env.KMUX_TRANSPORTS ?? 'userspace')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean) as ('userspace' | 'kcm' | 'sockmap')[];

/** Appends one JSON line of measurements to $KMUX_RELIABILITY_REPORT (scripts/soak.mjs reads them). */
export function report(suite: string, numbers: Record<string, unknown>): void {
  const path = process.env.KMUX_RELIABILITY_REPORT;
  if (!path) return;
  appendFileSync(path, `${JSON.stringify({ suite, soak: SOAK, at: new Date().toISOString(), ...numbers })}\n`);
}

/**
 * For a guarantee the server does not give yet — a missing feature reported with a
 * proposed design (see test/reliability/README.md). The test states the guarantee and is
 * expected to fail today (vitest's it.fails), so the suite stays green and turns red the
 * day it starts passing: then make it a plain `it`. KMUX_STRICT=1 runs these as plain
 * tests, to watch them fail.
 */
export const knownGap: typeof it.fails = process.env.KMUX_STRICT === '1' ? (it as typeof it.fails) : it.fails;
