/**
 * Status codes of the envelope's Response (proto/kmux/envelope/v1/envelope.proto): gRPC's
 * codes with gRPC's numbers, so that anyone who knows gRPC reads them the same way.
 */
import type { ErrorKind } from '@kmux/core';

export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type StatusName = keyof typeof Status;
export type StatusCode = (typeof Status)[StatusName];

const NAME_OF_CODE = new Map<number, StatusName>(Object.entries(Status).map(([name, code]) => [code, name as StatusName]));

/** "NOT_FOUND" for 5; a code this version does not know reads as "STATUS_<n>". */
export function statusName(code: number): string {
  return NAME_OF_CODE.get(code) ?? `STATUS_${code}`;
}

export function isStatusCode(code: unknown): code is StatusCode {
  return typeof code === 'number' && NAME_OF_CODE.has(code);
}

/**
 * The status of each kmux failure. A worker that dies under a request answers INTERNAL,
 * not UNAVAILABLE: kmux cannot tell whether that very request killed it (a heap limit, an
 * exit in the handler) or how far the handler got, and UNAVAILABLE invites clients to retry
 * automatically, which would feed a poison request to the next worker.
 */
export const STATUS_OF_KIND: Readonly<Record<ErrorKind, StatusCode>> = {
  overloaded: Status.RESOURCE_EXHAUSTED,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  unknown_method: Status.UNIMPLEMENTED,
  bad_request: Status.INVALID_ARGUMENT,
  worker_died: Status.INTERNAL,
  shutting_down: Status.UNAVAILABLE,
  handler: Status.INTERNAL,
  // The core closes the connection for these instead of replying; listed for completeness,
  // and for the client, which reports its own connection failures with a status too.
  protocol: Status.INVALID_ARGUMENT,
  frame_too_large: Status.RESOURCE_EXHAUSTED,
  connection_closed: Status.UNAVAILABLE,
  transport_unavailable: Status.UNAVAILABLE,
};

/** The status for a kmux failure kind; INTERNAL for kinds added by a newer @kmux/core. */
export function statusOfKind(kind: ErrorKind): StatusCode {
  return STATUS_OF_KIND[kind] ?? Status.INTERNAL;
}
