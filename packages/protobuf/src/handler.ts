/**
 * What a handler module provides: one function per service method, named like the method
 * in lowerCamelCase (`GetPrice` → `getPrice`), as protobufjs names them in JavaScript.
 */
import protobuf from 'protobufjs';
import { importHandlerModule } from '@kmux/core/worker';

/** What a handler learns about the call besides the request. */
export interface HandlerContext {
  /** The method's name as declared, e.g. "GetPrice". */
  readonly method: string;
  /** Absolute deadline in `Date.now()` ms; the reply is dropped after it. */
  readonly deadline: number;
}

/**
 * One method's implementation: gets the decoded request message and returns the response
 * as a message or a plain object that passes the response type's `verify` (or a promise
 * of one). It fails the call by throwing: an RpcError with its status, else INTERNAL.
 */
export type MethodHandler = (request: protobuf.Message & Record<string, unknown>, context: HandlerContext) => unknown;

export type HandlerObject = Readonly<Record<string, unknown>>;

/** The JavaScript name of a declared method, the same one the client uses. */
export function handlerName(method: string): string {
  return protobuf.util.lcFirst(method);
}

/**
 * The handler's function for `method`, or undefined. Only functions the module itself
 * provides count: a method named `ToString` must not find Object.prototype.toString.
 */
export function handlerFunction(handler: HandlerObject, method: string): MethodHandler | undefined {
  const name = handlerName(method);
  const fn = handler[name];
  if (typeof fn !== 'function' || fn === (Object.prototype as Record<string, unknown>)[name]) return undefined;
  return fn as MethodHandler;
}

/** A CommonJS module's `module.exports`, an ES module's default export, or else its named exports. */
export async function importHandler(path: string): Promise<HandlerObject> {
  const exported = await importHandlerModule(path);
  if (typeof exported !== 'object' || exported === null) {
    throw new TypeError(`${path} must export an object of handler functions, got ${typeof exported}`);
  }
  return exported as HandlerObject;
}
