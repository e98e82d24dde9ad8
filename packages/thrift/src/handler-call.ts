/**
 * Calls one handler method in whichever style it is written, and reports the outcome once:
 * - node-callback style, `(...args, callback)`, when the function declares more parameters
 *   than the Thrift method has arguments;
 * - otherwise its return value, awaited when it is a promise (or any thenable).
 */

/** `error` is null on success; any other value is what the handler threw or rejected with. */
export type HandlerOutcome = (error: unknown, value?: unknown) => void;

export type HandlerObject = Readonly<Record<string, unknown>>;

export function callHandler(handler: HandlerObject, method: string, args: unknown[], outcome: HandlerOutcome): void {
  const fn = handler[method] as (...params: unknown[]) => unknown;
  let settled = false;
  // A handler may call back twice or throw after calling back; only the first outcome counts.
  const settle: HandlerOutcome = (error, value) => {
    if (settled) return;
    settled = true;
    outcome(error ?? null, value);
  };
  try {
    if (fn.length > args.length) {
      fn.call(handler, ...args, (error: unknown, value?: unknown) => settle(error, value));
      return;
    }
    const returned = fn.apply(handler, args);
    if (isThenable(returned)) {
      returned.then(
        (value) => settle(null, value),
        (error: unknown) => settle(error ?? new Error(`${method} rejected without a reason`)),
      );
    } else {
      settle(null, returned);
    }
  } catch (error) {
    settle(error ?? new Error(`${method} threw without a reason`));
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
