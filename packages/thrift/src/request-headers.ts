/**
 * The THeader headers of the call a handler is running, for handler code:
 * `requestHeaders()` inside a handler (and whatever it awaits) returns them; outside a
 * THeader call it returns an empty object. The store is shared through a global symbol, so
 * a handler that loads another copy of this package still sees its worker's headers.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

type Headers = Readonly<Record<string, string>>;

const KEY = Symbol.for('kmux.thrift.requestHeaders');
const store = ((globalThis as Record<symbol, unknown>)[KEY] ??= new AsyncLocalStorage<Headers>()) as AsyncLocalStorage<Headers>;
const NONE: Headers = Object.freeze({});

export function requestHeaders(): Headers {
  return store.getStore() ?? NONE;
}

/** Runs `fn` (the handler call) with `headers` as its requestHeaders(). */
export function withRequestHeaders<T>(headers: Headers, fn: () => T): T {
  return store.run(headers, fn);
}
