/**
 * OpenTelemetry for each call a worker runs, after the RPC semantic conventions v1.45.0: a
 * SERVER span and the `rpc.server.call.duration` histogram. Both are made in the worker
 * thread that runs the handler, since the API's global providers are per thread, and the
 * span is the active context while the handler runs, so the handler's own spans are its
 * children. Only `@opentelemetry/api` is used: without an SDK registered in the worker,
 * every call here is a no-op.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  metrics,
  propagation,
  trace,
  type Attributes,
  type Histogram,
  type Tracer,
} from '@opentelemetry/api';

const SCOPE = '@kmux/core';
/** The conventions' `rpc.method` for a method the service does not declare. */
export const OTHER_METHOD = '_OTHER';
/** The boundaries (seconds) the conventions ask the histogram to advise. */
const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** Where a client's trace context arrives: THeader headers, envelope metadata (`traceparent`, `tracestate`). */
export type TraceCarrier = Readonly<Record<string, string>>;

/** How a call ended, in the protocol's own terms. */
export interface CallOutcome {
  /** `rpc.status_code`: the status the client gets, when the protocol has one. */
  readonly statusCode?: string;
  /** `error.type`, set only when the call failed: the span's status is then ERROR. */
  readonly errorType?: string;
  /** The span status description of a failure (the error's message). */
  readonly message?: string;
}

/** A call's `rpc.method`, and the name the client sent when that is `_OTHER`. */
export interface RpcMethod {
  readonly method: string;
  readonly original?: string;
}

export class RpcServerTelemetry {
  private readonly tracer: Tracer;
  private readonly duration: Histogram;

  /**
   * Build it once the handler modules are loaded and their `init()` has run: a meter taken
   * before the user registers an SDK stays a no-op.
   */
  constructor(
    /** `rpc.system.name`. */
    private readonly system: string,
    /** How a call that outlived its deadline ended: the main thread has already answered it. */
    private readonly deadlineExceeded: CallOutcome,
  ) {
    this.tracer = trace.getTracer(SCOPE);
    this.duration = metrics.getMeter(SCOPE).createHistogram('rpc.server.call.duration', {
      description: 'Measures the duration of an incoming Remote Procedure Call (RPC).',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    });
  }

  /**
   * Runs `call` (the request's decoding, handler and encoding, synchronous or not) in a
   * SERVER span continued from the trace context in `carrier`, then ends the span and
   * records the duration with what `outcome` reads from the result.
   */
  traced<R>(
    { method, original }: RpcMethod,
    carrier: TraceCarrier | undefined,
    deadline: number,
    call: () => R | Promise<R>,
    outcome: (result: R) => CallOutcome,
  ): R | Promise<R> {
    const attributes: Attributes = { 'rpc.system.name': this.system, 'rpc.method': method };
    const metricAttributes = { ...attributes };
    if (original !== undefined) attributes['rpc.method_original'] = original;
    const parent = carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
    const start = performance.now();
    const span = this.tracer.startSpan(
      method === OTHER_METHOD ? this.system : method,
      { kind: SpanKind.SERVER, attributes, startTime: start },
      parent,
    );
    const end = (ended: CallOutcome): void => {
      const late = Date.now() > deadline;
      const { statusCode, errorType, message } = late ? this.deadlineExceeded : ended;
      if (statusCode !== undefined) {
        metricAttributes['rpc.status_code'] = statusCode;
        span.setAttribute('rpc.status_code', statusCode);
      }
      if (errorType !== undefined) {
        metricAttributes['error.type'] = errorType;
        span.setAttribute('error.type', errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, ...(message !== undefined && { message }) });
      }
      const finished = performance.now();
      span.end(finished);
      this.duration.record((finished - start) / 1000, metricAttributes);
    };
    let result: R | Promise<R>;
    try {
      result = context.with(trace.setSpan(parent, span), call);
    } catch (error) {
      end({ errorType: error instanceof Error ? error.name : 'Error', message: String(error) });
      throw error;
    }
    if (!isPromise(result)) {
      end(outcome(result));
      return result;
    }
    return result.then(
      (settled) => {
        end(outcome(settled));
        return settled;
      },
      (error: unknown) => {
        end({ errorType: error instanceof Error ? error.name : 'Error', message: String(error) });
        throw error;
      },
    );
  }
}

/** The active trace context as carrier entries (`traceparent`, …) for a request's metadata; empty without an SDK. */
export function activeTraceCarrier(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}
