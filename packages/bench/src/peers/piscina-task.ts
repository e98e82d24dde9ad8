/**
 * The piscina peer's task module: runs one Catalog call on the example handler, in a
 * pool thread. Thrown declared exceptions (InvalidArgument, ItemNotFound) would lose their
 * class crossing threads, so they come back as data for the main thread to rebuild.
 */
import { createRequire } from 'node:module';
import { threadId as thread } from 'node:worker_threads';
import { CATALOG_HANDLER_MODULE } from '../service/catalog-modules.js';

export interface CatalogTask {
  readonly method: string;
  readonly args: readonly unknown[];
}

/** The call's outcome, and the pool thread that ran it (the bench reports each thread's share). */
export type CatalogTaskResult = { readonly thread: number } & (
  | { readonly ok: unknown }
  | { readonly thrown: { readonly type: string; readonly fields: Record<string, unknown> } }
);

const require = createRequire(CATALOG_HANDLER_MODULE);
const handler = require(CATALOG_HANDLER_MODULE) as Record<string, (...args: unknown[]) => unknown>;
const types = require('./gen-nodejs/catalog_types') as Record<string, unknown>;

export default async function runCall({ method, args }: CatalogTask): Promise<CatalogTaskResult> {
  const fn = handler[method];
  if (typeof fn !== 'function') throw new Error(`the Catalog handler has no method ${method}`);
  // Buffers arrive as Uint8Arrays; the handler gets what the stock server would pass it.
  const callArgs = args.map((a) => (a instanceof Uint8Array ? Buffer.from(a.buffer, a.byteOffset, a.byteLength) : a));
  try {
    // The Thrift processors' own rule: one parameter more than declared means a callback.
    const ok =
      fn.length === callArgs.length + 1
        ? await new Promise((resolve, reject) => fn(...callArgs, (error: unknown, result: unknown) => (error ? reject(error) : resolve(result))))
        : await fn(...callArgs);
    return { thread, ok };
  } catch (error) {
    const type = (error as { name?: unknown } | null)?.name;
    if (typeof type === 'string' && types[type] === (error as object).constructor) {
      return { thread, thrown: { type, fields: { ...(error as object) } } };
    }
    throw error;
  }
}
