// The surface a codec author needs inside a worker thread (`@kmux/core/worker`).
export type {
  CallContext,
  CreateWorkerCodec,
  WorkerCodec,
  WorkerResult,
} from '../codec/codec.js';
export { KmuxError } from '../errors.js';
