/**
 * The worker half's per-request work: read the envelope, decode the request message, run
 * the handler, encode the reply, in a server span continued from the trace context in the
 * envelope's metadata. Every failure becomes a Response with a status; nothing here throws.
 */
import type { CallContext, KmuxError, RequestHead, WorkerCodec, WorkerResult } from '@kmux/core';
import { RpcServerTelemetry, type CallOutcome, type TracedMethod } from '@kmux/core/worker';
import type protobuf from 'protobufjs';
import { encodeResponseEnvelope, readRequestEnvelope, type RequestEnvelopeHead } from './envelope.js';
import { healthReply } from './health.js';
import { checkMessage } from './message-check.js';
import type { BoundMethod, MethodTable } from './method-table.js';
import { RpcError } from './rpc-error.js';
import { Status, statusName, statusOfKind, type StatusCode } from './status.js';

/** `rpc.system.name` of calls in the kmux envelope: not gRPC on the wire, though its status codes are gRPC's. */
const PROTOBUF_RPC_SYSTEM = 'kmux_protobuf';
/** The statuses a server counts as its own failure: the RPC conventions' list for gRPC servers. */
const SERVER_ERRORS: ReadonlySet<number> = new Set([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

/** A worker's result and the status it answered with, for the call's span. */
interface ProtobufResult extends WorkerResult {
  readonly status: StatusCode;
  readonly message?: string;
}

const NO_PAYLOAD = new Uint8Array(0);

export class ProtobufDispatcher implements WorkerCodec {
  /** Each declared method as traced (`rpc.method` "kmux.example.v1.Pricing/GetPrice"), by its name. */
  private readonly tracedMethods: ReadonlyMap<string, TracedMethod>;
  private readonly telemetry = new RpcServerTelemetry(PROTOBUF_RPC_SYSTEM, outcomeOf({ status: Status.DEADLINE_EXCEEDED, message: 'deadline exceeded' }));

  /** Build it after the handler's init(), where a user may register an OpenTelemetry SDK in this worker. */
  constructor(
    private readonly table: MethodTable,
    /** The service's methods as declared (`GetPrice`), and what loading the handler warned about. */
    readonly methods: readonly string[],
    readonly warnings: readonly string[],
  ) {
    this.tracedMethods = new Map(methods.map((method) => [method, this.telemetry.method(`${table.serviceName}/${method}`)]));
  }

  peek(body: Buffer): RequestHead {
    const { id, method, deadlineMs } = readRequestEnvelope(body);
    return { id, method, oneway: false, timeoutMs: deadlineMs === 0 ? undefined : deadlineMs };
  }

  errorReply(body: Buffer, error: KmuxError): Buffer | null {
    let id: number;
    try {
      ({ id } = readRequestEnvelope(body));
    } catch {
      return null;
    }
    return encodeResponseEnvelope({ id, status: statusOfKind(error.kind), message: error.message, payload: NO_PAYLOAD });
  }

  handle(body: Buffer, { deadline }: CallContext): WorkerResult | Promise<WorkerResult> {
    let head: RequestEnvelopeHead;
    try {
      head = readRequestEnvelope(body);
    } catch (error) {
      // The main thread's peek has already read this envelope; only a direct caller gets here.
      return failure(0, Status.INVALID_ARGUMENT, describe(error));
    }
    const { id, method } = head;
    const health = healthReply(this.table.serviceName, id, method, body.subarray(head.payloadStart, head.payloadEnd));
    if (health) return health;
    if (!this.telemetry.enabled) return this.run(body, head, deadline);
    const traced = this.tracedMethods.get(method) ?? this.telemetry.otherMethod(method);
    return this.telemetry.traced(traced, head.metadata, deadline, () => this.run(body, head, deadline), outcomeOf);
  }

  private run(body: Buffer, head: RequestEnvelopeHead, deadline: number): ProtobufResult | Promise<ProtobufResult> {
    const { id, method } = head;
    const bound = this.table.lookup(method);
    if (typeof bound === 'string') return failure(id, Status.UNIMPLEMENTED, bound);

    let request: protobuf.Message;
    try {
      const payload = body.subarray(head.payloadStart, head.payloadEnd);
      checkMessage(bound.requestType, payload);
      request = bound.requestType.decode(payload);
    } catch (error) {
      return failure(id, Status.INVALID_ARGUMENT, `cannot decode the ${bound.requestType.name} of ${method}: ${describe(error)}`);
    }
    let returned: unknown;
    try {
      returned = bound.run(request as protobuf.Message & Record<string, unknown>, { method, deadline });
    } catch (error) {
      return handlerFailure(id, error);
    }
    if (isThenable(returned)) {
      return Promise.resolve(returned).then(
        (value) => success(id, method, bound, value),
        (error: unknown) => handlerFailure(id, error),
      );
    }
    return success(id, method, bound, returned);
  }
}

/** `rpc.status_code` is the status's name; one the server counts as its failure is also `error.type`. */
function outcomeOf({ status, message }: Pick<ProtobufResult, 'status' | 'message'>): CallOutcome {
  const name = statusName(status);
  return SERVER_ERRORS.has(status) ? { statusCode: name, errorType: name, ...(message !== undefined && { message }) } : { statusCode: name };
}

function success(id: number, method: string, bound: BoundMethod, value: unknown): ProtobufResult {
  // encode() trusts its input and would write garbage, or throw deep inside, for a wrong
  // field type; verify() names the field instead.
  const problem = bound.responseType.verify(value as Record<string, unknown>);
  if (problem !== null) {
    return failure(id, Status.INTERNAL, `cannot encode the ${bound.responseType.name} reply of ${method}: ${problem}`);
  }
  let payload: Uint8Array;
  try {
    payload = bound.responseType.encode(value as Record<string, unknown>).finish();
  } catch (error) {
    return failure(id, Status.INTERNAL, `cannot encode the ${bound.responseType.name} reply of ${method}: ${describe(error)}`);
  }
  return { reply: encodeResponseEnvelope({ id, status: Status.OK, message: '', payload }), failed: false, status: Status.OK };
}

/** An RpcError answers with its own status; anything else a handler throws is INTERNAL. */
function handlerFailure(id: number, error: unknown): ProtobufResult {
  if (RpcError.is(error)) return failure(id, error.status, error.message);
  return failure(id, Status.INTERNAL, describe(error));
}

function failure(id: number, status: StatusCode, message: string): ProtobufResult {
  return { reply: encodeResponseEnvelope({ id, status, message, payload: NO_PAYLOAD }), failed: true, status, message };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error ?? 'failed without a reason');
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
