import { setThreadSlice } from '@kmux/native';

/** Whether a thread got the short time slice it asked for, and the kernel's answer. */
export interface ThreadSliceOutcome {
  readonly ok: boolean;
  readonly reason: string;
}

/**
 * Asks EEVDF for a `us` µs time slice for the calling thread (Linux ≥ 6.12, unprivileged):
 * a thread with a short slice preempts a CPU-bound handler on wakeup within about that
 * much, instead of the default ~3 ms, so the dispatching thread and a free worker get to
 * run a fast call sooner. Falls back silently (the outcome says why); null when not asked.
 */
export function applyThreadSlice(us: number | false): ThreadSliceOutcome | null {
  if (us === false) return null;
  const check = setThreadSlice(us);
  return { ok: check.ok, reason: check.reason };
}
