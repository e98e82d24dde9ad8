/**
 * gRPC's standard health service (grpc.health.v1.Health) in the kmux envelope, so the
 * health checkers written for gRPC work with a kmux protobuf server: Check and Watch by
 * their full names ("grpc.health.v1.Health/Check"), which no service's own method name can
 * be. WIRE.md §11 gives the semantics.
 */
import protobuf from 'protobufjs';
import type { WorkerResult } from '@kmux/core';
import { encodeResponseEnvelope } from './envelope.js';
import { checkMessage } from './message-check.js';
import { Status } from './status.js';

export const HEALTH_CHECK = 'grpc.health.v1.Health/Check';
export const HEALTH_WATCH = 'grpc.health.v1.Health/Watch';

/** grpc.health.v1.HealthCheckResponse.ServingStatus. */
export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

const root = protobuf.Root.fromJSON({
  nested: {
    HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
    HealthCheckResponse: { fields: { status: { type: 'int32', id: 1 } } },
  },
});
const Request = root.lookupType('HealthCheckRequest');
const Response = root.lookupType('HealthCheckResponse');

/**
 * Answers a health call for a server of `serviceName`, or returns null when `method` is not
 * one. A worker that runs it is up and the server takes requests (a draining server answers
 * every new request UNAVAILABLE before it reaches a worker).
 */
export function healthReply(serviceName: string, id: number, method: string, payload: Uint8Array): WorkerResult | null {
  if (method !== HEALTH_CHECK && method !== HEALTH_WATCH) return null;
  let service: string;
  try {
    checkMessage(Request, payload);
    ({ service } = Request.toObject(Request.decode(payload), { defaults: true }) as { service: string });
  } catch (error) {
    return fail(id, Status.INVALID_ARGUMENT, `cannot decode the HealthCheckRequest: ${(error as Error).message}`);
  }
  const known = service === '' || service === serviceName;
  if (!known && method === HEALTH_CHECK) return fail(id, Status.NOT_FOUND, `unknown service '${service}'`);
  const status = known ? ServingStatus.SERVING : ServingStatus.SERVICE_UNKNOWN;
  const reply = Response.encode({ status }).finish();
  return { reply: encodeResponseEnvelope({ id, status: Status.OK, message: '', payload: reply }), failed: false };
}

function fail(id: number, status: number, message: string): WorkerResult {
  return { reply: encodeResponseEnvelope({ id, status, message, payload: new Uint8Array(0) }), failed: true };
}
