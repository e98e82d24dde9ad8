/**
 * The calling thread's active trace context as a carrier (`traceparent`, `tracestate`), for a
 * client to send with a call.
 */
import { registeredApi } from './opentelemetry-api.js';

/** Empty without an SDK (or with no active span). */
export function activeTraceCarrier(): Record<string, string> {
  const carrier: Record<string, string> = {};
  const api = registeredApi();
  api?.propagation.inject(api.context.active(), carrier);
  return carrier;
}
