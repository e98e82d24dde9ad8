import { fileURLToPath } from 'node:url';
import type { ClientCodec, RequestHead, ServerCodec } from './codec.js';
import { KmuxError, NOT_RUN_SHUTTING_DOWN } from '../errors.js';
import { decodeRawRequest, encodeRawError } from './raw-wire.js';

export interface RawCodecOptions {
  /**
   * Path of the handler module, loaded in every worker. It exports either a default
   * function `(payload: Buffer, method: string) => Uint8Array | string | Promise<…>` or
   * named functions, one per method, `(payload: Buffer) => …`.
   */
  readonly handler: string;
}

/** Bytes in, bytes out: dispatch work to the pool without any IDL. */
export function rawCodec(options: RawCodecOptions): ServerCodec {
  return {
    name: 'raw',
    peek(body: Buffer): RequestHead {
      const { id, method } = decodeRawRequest(body);
      return { id, method, oneway: false };
    },
    errorReply(head: RequestHead, error: KmuxError): Buffer {
      return encodeRawError(head.id, error);
    },
    worker: {
      module: fileURLToPath(new URL('./raw-worker.js', import.meta.url)),
      options: { handler: options.handler },
    },
    methodNames: { format: 'raw', onWire: (method) => [method] },
  };
}

const NOT_RUN = encodeRawError(0, new KmuxError('shutting_down', NOT_RUN_SHUTTING_DOWN)).subarray(4);

export const rawClientCodec: ClientCodec = {
  replyId: (body) => body.readUInt32BE(0),
  // A draining server's refusal: status shutting_down, message NOT_RUN_SHUTTING_DOWN.
  notRun: (body) => body.subarray(4).equals(NOT_RUN),
};
