import type { CreateWorkerCodec, WorkerResult } from './codec.js';
import { INIT_HOOK, importHandlerModule, initHandler, type HandlerObject } from './handler-module.js';
import { KmuxError } from '../errors.js';
import { RAW_STATUS, decodeRawRequest, encodeRawError, encodeRawReply } from './raw-wire.js';
import type { RawCodecOptions } from './raw.js';

type Output = Uint8Array | string;
type Handler = (payload: Buffer, method: string) => Output | Promise<Output>;

function toBytes(value: Output): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`handler returned ${typeof value}, expected a Uint8Array or a string`);
}

/** The module's default function, for every method; or its object of methods, whose init() runs first. */
async function loadHandler(path: string): Promise<(method: string) => Handler | undefined> {
  const main = await importHandlerModule(path);
  if (typeof main === 'function') return () => main as Handler;
  const methods = main as HandlerObject;
  await initHandler(path, methods, []);
  return (method) => {
    const fn = Object.hasOwn(methods, method) && method !== INIT_HOOK ? methods[method] : undefined;
    return typeof fn === 'function' ? (fn as Handler) : undefined;
  };
}

export const createWorkerCodec: CreateWorkerCodec = async (options) => {
  const handlerFor = await loadHandler((options as RawCodecOptions).handler);

  const failure = (id: number, error: unknown): WorkerResult => {
    const kmuxError =
      error instanceof KmuxError ? error : new KmuxError('handler', error instanceof Error ? error.message : String(error));
    return { reply: encodeRawError(id, kmuxError), failed: true };
  };
  const success = (id: number, value: Output): WorkerResult => ({
    reply: encodeRawReply(id, RAW_STATUS.ok, toBytes(value)),
    failed: false,
  });

  return {
    peek(body) {
      const { id, method } = decodeRawRequest(body);
      return { id, method, oneway: false };
    },
    errorReply(body, error) {
      // Every raw request is owed a reply, but one too short to carry an id cannot get one.
      return body.length >= 4 ? encodeRawError(body.readUInt32BE(0), error) : null;
    },
    handle(body) {
      let request;
      try {
        request = decodeRawRequest(body);
      } catch (error) {
        return failure(body.length >= 4 ? body.readUInt32BE(0) : 0, new KmuxError('bad_request', String(error)));
      }
      const handler = handlerFor(request.method);
      if (!handler) return failure(request.id, new KmuxError('unknown_method', `unknown method '${request.method}'`));
      try {
        const result = handler(request.payload, request.method);
        if (result instanceof Promise) {
          // catch after then: a resolved value that is not bytes is the handler's error too.
          return result.then((value) => success(request.id, value)).catch((error: unknown) => failure(request.id, error));
        }
        return success(request.id, result);
      } catch (error) {
        return failure(request.id, error);
      }
    },
  };
};
