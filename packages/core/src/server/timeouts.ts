import type { RequestHead } from '../codec/codec.js';

/** What decides a request's deadline; plain data, so that workers get it too. */
export interface DeadlinePolicy {
  readonly deadlineMs: number;
  readonly methodDeadlines: Readonly<Record<string, number>>;
}

/**
 * Rounds a client-sent timeout down to 1/16 precision (at most 6 % early), so the deadline
 * queue keeps a bounded number of per-timeout FIFOs whatever timeouts clients send.
 */
export function quantizeTimeout(ms: number): number {
  const whole = Math.max(1, Math.floor(ms));
  const step = 2 ** Math.max(0, Math.floor(Math.log2(whole)) - 4);
  return Math.floor(whole / step) * step;
}

/** The request's timeout in ms: the method's (or default) deadline, or the client's when shorter. */
export function timeoutFor(head: RequestHead, policy: DeadlinePolicy): number {
  const serverTimeout = policy.methodDeadlines[head.method] ?? policy.deadlineMs;
  if (head.timeoutMs === undefined || !Number.isFinite(head.timeoutMs) || head.timeoutMs <= 0) return serverTimeout;
  return Math.min(quantizeTimeout(head.timeoutMs), serverTimeout);
}
