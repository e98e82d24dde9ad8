// The surface a codec author needs inside a worker thread (`@kmux/core/worker`).
export type {
  CallContext,
  CreateWorkerCodec,
  WorkerCodec,
  WorkerResult,
} from '../codec/codec.js';
export { KmuxError } from '../errors.js';
export { checkHandler, importHandlerModule, initHandler, type HandlerObject } from '../codec/handler-module.js';
export { provideModules, type ModuleFallbacks } from '../codec/module-fallback.js';
export { RpcServerTelemetry, type CallOutcome, type TracedMethod, type TraceCarrier } from '../telemetry/rpc-server-telemetry.js';
