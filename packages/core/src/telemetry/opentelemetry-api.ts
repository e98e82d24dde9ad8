/**
 * @opentelemetry/api, loaded only in a thread where something has registered with it (an
 * SDK's providers, a propagator). Merely loading the API slowed every request of the
 * process: echo-16KiB lost about half its throughput when a server's main thread loaded it
 * and a fifth when its workers did (measured in the bench; the cause was not found).
 * Every 1.x copy of the API keeps what is registered on globalThis under one key, so a
 * registration through the user's own copy shows here without loading ours.
 */
import { createRequire } from 'node:module';

export type OpenTelemetryApi = typeof import('@opentelemetry/api');

const REGISTRY = Symbol.for('opentelemetry.js.api.1');

let api: OpenTelemetryApi | undefined;

/** The API, or undefined when nothing in this thread has registered with it. */
export function registeredApi(): OpenTelemetryApi | undefined {
  if ((globalThis as Record<symbol, unknown>)[REGISTRY] === undefined) return undefined;
  api ??= createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi;
  return api;
}
