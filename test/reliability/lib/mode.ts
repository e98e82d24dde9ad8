/**
 * One code path, three sizes. The CI mode (the default, `npm test`) runs every reliability
 * and fuzz suite at a size that takes seconds; the soak mode (`KMUX_SOAK=1`, which
 * `npm run test:soak` sets) runs the same tests at the sizes the guarantees are stated
 * for; the short mode (`KMUX_SHORT=1`, set for the suites in the kernel VM, where emulation
 * runs node 10-20× slower) runs them smaller still, with longer timeouts. Individual numbers
 * can be overridden with their own variables for a run in between.
 */
import { appendFileSync } from 'node:fs';

export const SOAK = process.env.KMUX_SOAK === '1';
export const SHORT = !SOAK && process.env.KMUX_SHORT === '1';

/** The CI, soak or short value (short defaults to CI's), or the number in `process.env[override]` when that is set. */
export function sized(ci: number, soak: number, override?: string, short = ci): number {
  const raw = override ? process.env[override] : undefined;
  if (raw !== undefined && raw !== '') {
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${override} must be a positive number, got '${raw}'`);
    return value;
  }
  return SOAK ? soak : SHORT ? short : ci;
}

/** Per-test timeout: generous in CI, ×5 in short mode (emulated VM), hours in soak mode. */
export function timeoutMs(ci: number, soak = 60 * 60_000): number {
  return SOAK ? soak : SHORT ? 5 * ci : ci;
}

type TransportName = 'userspace' | 'kcm' | 'sockmap' | 'native';

/**
 * Transports every reliability suite runs on, each in turn: `KMUX_TRANSPORTS` (default
 * `userspace,sockmap,native`; sockmap needs a host that may load BPF, as test/sockmap does). KCM runs
 * in the kernel VM (test/kernel/run.sh sets `kcm`).
 */
export const TRANSPORTS: readonly TransportName[] = (process.env.KMUX_TRANSPORTS ?? 'userspace,sockmap,native')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean) as TransportName[];

/** Appends one JSON line of measurements to $KMUX_RELIABILITY_REPORT (scripts/soak.mjs reads them). */
export function report(suite: string, numbers: Record<string, unknown>): void {
  const path = process.env.KMUX_RELIABILITY_REPORT;
  if (!path) return;
  appendFileSync(path, `${JSON.stringify({ suite, soak: SOAK, at: new Date().toISOString(), ...numbers })}\n`);
}
