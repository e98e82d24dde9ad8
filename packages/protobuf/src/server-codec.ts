/**
 * The main-thread half of the protobuf codec: routes requests by their envelope and
 * answers the failures the core raises itself. Messages are decoded only in the workers.
 */
import { isAbsolute } from 'node:path';
import type { KmuxError, RequestHead, ServerCodec } from '@kmux/core';
import { encodeResponseEnvelope, readRequestEnvelope } from './envelope.js';
import { statusOfKind } from './status.js';

export interface ProtobufCodecOptions {
  /** Absolute path of the `.proto` file declaring the service, or of its `pbjs -t json` bundle. */
  readonly schema: string;
  /** Fully qualified service name, e.g. "kmux.example.v1.Pricing". */
  readonly service: string;
  /** Absolute path of the handler module (CJS `module.exports`, or an ES module's default or named exports). */
  readonly handler: string;
}

/** What each worker receives to build its half; plain data, since it crosses threads. */
export type ProtobufWorkerOptions = ProtobufCodecOptions;

const WORKER_MODULE = new URL('./worker-codec.js', import.meta.url).href;
const NO_PAYLOAD = new Uint8Array(0);

/** A kmux ServerCodec serving one protobuf service over the v1 envelope (WIRE.md). */
export function protobufCodec(options: ProtobufCodecOptions): ServerCodec {
  for (const key of ['schema', 'handler'] as const) {
    // Workers resolve these paths on their own; relative ones would depend on their cwd.
    if (!isAbsolute(options[key])) throw new TypeError(`protobufCodec: ${key} must be an absolute path, got '${options[key]}'`);
  }
  if (!options.service) throw new TypeError('protobufCodec: service must name the service to serve');
  const workerOptions: ProtobufWorkerOptions = { schema: options.schema, service: options.service, handler: options.handler };
  return {
    name: 'protobuf',
    peek(body: Buffer): RequestHead {
      const { id, method, deadlineMs } = readRequestEnvelope(body);
      return { id, method, oneway: false, timeoutMs: deadlineMs === 0 ? undefined : deadlineMs };
    },
    errorReply(head: RequestHead, error: KmuxError): Buffer {
      return encodeResponseEnvelope({ id: head.id, status: statusOfKind(error.kind), message: error.message, payload: NO_PAYLOAD });
    },
    worker: { module: WORKER_MODULE, options: workerOptions },
    methodNames: { format: 'protobuf', onWire: (method) => [method] },
  };
}
