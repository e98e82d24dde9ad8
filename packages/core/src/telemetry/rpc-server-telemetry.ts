/**
 * OpenTelemetry for each call a worker runs, after the RPC semantic conventions v1.45.0: a
 * SERVER span and the `rpc.server.call.duration` histogram. Both are made in the worker
 * thread that runs the handler, since the API's global providers are per thread, and the
 * span is the active context while the handler runs, so the handler's own spans are its
 * children. Only `@opentelemetry/api` is used, and only where an SDK registered with it
 * (opentelemetry-api.ts): without one in the worker, calls run as they are.
 */
import type { Attributes, Histogram, Span, Tracer } from '@opentelemetry/api';
import { registeredApi, type OpenTelemetryApi } from './opentelemetry-api.js';

const SCOPE = '@kmux/core';
const DURATION_METRIC = 'rpc.server.call.duration';
/** The conventions' `rpc.method` for a method the service does not declare. */
const OTHER_METHOD = '_OTHER';
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

/** A method as its calls are traced: the span's name and the attributes every call of it has. */
export interface TracedMethod {
  readonly spanName: string;
  readonly spanAttributes: Attributes;
  /** The histogram's attributes of a call that ends without a status. */
  readonly metricAttributes: Attributes;
}

export class RpcServerTelemetry {
  /** This thread's API, tracer and histogram; undefined when it has neither a tracer nor a meter provider. */
  private readonly otel: Telemetry | undefined;

  /**
   * Build it once the handler modules are loaded and their `init()` has run, where the user
   * registers the SDK: what is registered then is what this instance uses.
   */
  constructor(
    /** `rpc.system.name`. */
    private readonly system: string,
    /** How a call that outlived its deadline ended: the main thread has already answered it. */
    private readonly deadlineExceeded: CallOutcome,
  ) {
    this.otel = telemetryOf(registeredApi());
  }

  /**
   * False when this thread has neither a tracer nor a meter provider: calls then run
   * untouched, and a codec may call them directly instead of through traced().
   */
  get enabled(): boolean {
    return this.otel !== undefined;
  }

  /** A method the service declares, by its `rpc.method` ("Service/method"); build it once per method. */
  method(rpcMethod: string): TracedMethod {
    const attributes = Object.freeze({ 'rpc.system.name': this.system, 'rpc.method': rpcMethod });
    return { spanName: rpcMethod, spanAttributes: attributes, metricAttributes: attributes };
  }

  /** A method the service does not declare: `_OTHER`, with the name the client sent beside it on the span. */
  otherMethod(original: string): TracedMethod {
    const metricAttributes = { 'rpc.system.name': this.system, 'rpc.method': OTHER_METHOD };
    return { spanName: this.system, spanAttributes: { ...metricAttributes, 'rpc.method_original': original }, metricAttributes };
  }

  /**
   * Runs `call` (the request's decoding, handler and encoding, synchronous or not) in a
   * SERVER span continued from the trace context in `carrier`, then ends the span and
   * records the duration with what `outcome` reads from the result.
   */
  traced<R>(
    method: TracedMethod,
    carrier: TraceCarrier | undefined,
    deadline: number,
    call: () => R | Promise<R>,
    outcome: (result: R) => CallOutcome,
  ): R | Promise<R> {
    const otel = this.otel;
    if (!otel) return call();
    const { api, tracer } = otel;
    const { ROOT_CONTEXT, SpanKind, context, isSpanContextValid, propagation, trace } = api;
    const parent = carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
    const start = performance.now();
    const span = tracer.startSpan(method.spanName, { kind: SpanKind.SERVER, attributes: method.spanAttributes, startTime: start }, parent);
    let result: R | Promise<R>;
    try {
      // Without a tracing SDK (an invalid span context) there is no context to make active.
      result = isSpanContextValid(span.spanContext()) ? context.with(trace.setSpan(parent, span), call) : call();
    } catch (error) {
      this.end(otel, method, span, start, deadline, thrownOutcome(error));
      throw error;
    }
    if (!isPromise(result)) {
      this.end(otel, method, span, start, deadline, outcome(result));
      return result;
    }
    return result.then(
      (settled) => {
        this.end(otel, method, span, start, deadline, outcome(settled));
        return settled;
      },
      (error: unknown) => {
        this.end(otel, method, span, start, deadline, thrownOutcome(error));
        throw error;
      },
    );
  }

  private end({ api, duration }: Telemetry, method: TracedMethod, span: Span, start: number, deadline: number, ended: CallOutcome): void {
    const { statusCode, errorType, message } = Date.now() > deadline ? this.deadlineExceeded : ended;
    let attributes = method.metricAttributes;
    if (statusCode !== undefined || errorType !== undefined) {
      const ended: Attributes = {};
      if (statusCode !== undefined) ended['rpc.status_code'] = statusCode;
      if (errorType !== undefined) {
        ended['error.type'] = errorType;
        span.setStatus({ code: api.SpanStatusCode.ERROR, ...(message !== undefined && { message }) });
      }
      span.setAttributes(ended);
      attributes = { ...attributes, ...ended };
    }
    const finished = performance.now();
    span.end(finished);
    duration.record((finished - start) / 1000, attributes);
  }
}

interface Telemetry {
  readonly api: OpenTelemetryApi;
  readonly tracer: Tracer;
  readonly duration: Histogram;
}

/** This thread's tracer and histogram, or undefined when both would be the API's own no-ops. */
function telemetryOf(api: OpenTelemetryApi | undefined): Telemetry | undefined {
  if (!api) return undefined;
  const { trace, metrics, ProxyTracerProvider, createNoopMeter } = api;
  const tracer = trace.getTracer(SCOPE);
  const duration = metrics.getMeter(SCOPE).createHistogram(DURATION_METRIC, {
    description: 'Measures the duration of an incoming Remote Procedure Call (RPC).',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
  });
  // The API's own no-ops: a proxy provider with nothing behind it, the no-op meter's histogram.
  const tracers = trace.getTracerProvider();
  const tracing = !(tracers instanceof ProxyTracerProvider) || tracers.getDelegateTracer(SCOPE) !== undefined;
  const metering = duration !== createNoopMeter().createHistogram(DURATION_METRIC);
  return tracing || metering ? { api, tracer, duration } : undefined;
}

/** A codec that throws has a bug; its span says what was thrown. */
function thrownOutcome(error: unknown): CallOutcome {
  return { errorType: error instanceof Error ? error.name : 'Error', message: String(error) };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}
