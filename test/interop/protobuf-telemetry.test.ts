// OpenTelemetry for protobuf calls, read back from the SDK's in-memory exporters that each
// worker registers in its handler's init(): a SERVER span per call continued from the
// traceparent in the envelope's metadata, "package.Service/Method", statuses by gRPC's rules
// (a server error sets error.type, NOT_FOUND does not), and the duration histogram.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { Server } from '@kmux/core';
import { Status, createProtobufClient, loadService, protobufCodec, type ProtobufClient } from '@kmux/protobuf';
import { clientTraceContext, collectTelemetry, type ExportedSpan } from './otel-collect.js';
import { PRICING_PROTO, PRICING_SERVICE, rawEnvelopeConnection, type PricingMethods } from './protobuf-pricing.js';

const TRACED_HANDLER = fileURLToPath(new URL('./fixtures/traced-pricing-handler.mjs', import.meta.url));
const WORKERS = 2;

describe('OpenTelemetry, protobuf: the Pricing service', () => {
  let server: Server;
  let port: number;
  let client: ProtobufClient<PricingMethods>;
  beforeAll(async () => {
    server = new Server({
      codec: protobufCodec({ schema: PRICING_PROTO, service: PRICING_SERVICE, handler: TRACED_HANDLER }),
      workers: WORKERS,
      logger: { info: () => undefined, warn: console.warn, error: console.error },
    });
    ({ port } = await server.listen({ host: '127.0.0.1', port: 0 }));
    client = createProtobufClient<PricingMethods>(await loadService(PRICING_PROTO, PRICING_SERVICE), { port });
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  async function spansOf(traceId: string): Promise<ExportedSpan[]> {
    const { spans } = await collectTelemetry(WORKERS);
    return spans.filter((span) => span.traceId === traceId);
  }

  it('a traceparent in the metadata: the server span is the client span\'s child, "package.Service/Method", OK', async () => {
    const { traceId, parentSpanId, traceparent } = clientTraceContext();
    expect(await client.getPrice({ sku: 'kb-001' }, { metadata: { traceparent, tracestate: 'vendor=kmux' } })).toMatchObject({ unitPriceCents: 8900 });
    expect(await spansOf(traceId)).toEqual([
      expect.objectContaining({
        name: 'kmux.example.v1.Pricing/GetPrice',
        kind: SpanKind.SERVER,
        parentSpanId,
        traceState: 'vendor=kmux',
        attributes: { 'rpc.system.name': 'kmux_protobuf', 'rpc.method': 'kmux.example.v1.Pricing/GetPrice', 'rpc.status_code': 'OK' },
        status: { code: SpanStatusCode.UNSET },
      }),
    ]);
  });

  it('kmux\'s client sends its thread\'s active trace context by itself, with an SDK\'s context manager and propagator', async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    try {
      const { traceId, parentSpanId } = clientTraceContext();
      const caller = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: parentSpanId, traceFlags: TraceFlags.SAMPLED });
      expect(await context.with(caller, () => client.getPrice({ sku: 'ms-002' }))).toMatchObject({ unitPriceCents: 2900 });
      expect(await spansOf(traceId)).toEqual([expect.objectContaining({ name: 'kmux.example.v1.Pricing/GetPrice', parentSpanId })]);
    } finally {
      context.disable();
      propagation.disable();
    }
  });

  it('NOT_FOUND from the handler is the caller\'s problem: rpc.status_code only, no error.type', async () => {
    const { traceId, traceparent } = clientTraceContext();
    await expect(client.getPrice({ sku: 'nope' }, { metadata: { traceparent } })).rejects.toMatchObject({ status: Status.NOT_FOUND });
    const [span] = await spansOf(traceId);
    expect(span).toMatchObject({ attributes: { 'rpc.status_code': 'NOT_FOUND' }, status: { code: SpanStatusCode.UNSET } });
    expect(span!.attributes).not.toHaveProperty('error.type');
  });

  it('a handler that throws: INTERNAL as rpc.status_code and error.type, span status ERROR with the message', async () => {
    const { traceId, traceparent } = clientTraceContext();
    await expect(client.getPrice({ sku: 'boom' }, { metadata: { traceparent } })).rejects.toMatchObject({ status: Status.INTERNAL });
    expect(await spansOf(traceId)).toEqual([
      expect.objectContaining({
        attributes: expect.objectContaining({ 'rpc.status_code': 'INTERNAL', 'error.type': 'INTERNAL' }),
        status: { code: SpanStatusCode.ERROR, message: 'boom' },
      }),
    ]);
  });

  it('a call that outlives its deadline ends as DEADLINE_EXCEEDED, what its client was answered, when the handler returns', async () => {
    const { traceId, traceparent } = clientTraceContext();
    await expect(client.sleep({ ms: 300 }, { timeoutMs: 100, metadata: { traceparent } })).rejects.toMatchObject({ status: Status.DEADLINE_EXCEEDED });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const [span] = await spansOf(traceId);
    expect(span).toMatchObject({
      name: 'kmux.example.v1.Pricing/Sleep',
      attributes: { 'rpc.status_code': 'DEADLINE_EXCEEDED', 'error.type': 'DEADLINE_EXCEEDED' },
      status: { code: SpanStatusCode.ERROR },
    });
    expect(span!.durationMs).toBeGreaterThanOrEqual(299);
  });

  it('an unknown method: rpc.method _OTHER, the name sent in rpc.method_original, UNIMPLEMENTED', async () => {
    const { connection, call } = rawEnvelopeConnection(port, 5_000);
    try {
      expect(await call('Refund', new Uint8Array(0))).toMatchObject({ status: Status.UNIMPLEMENTED });
    } finally {
      connection.close();
    }
    const { spans } = await collectTelemetry(WORKERS);
    expect(spans.filter((span) => span.attributes['rpc.method_original'] === 'Refund')).toEqual([
      expect.objectContaining({
        name: 'kmux_protobuf',
        attributes: expect.objectContaining({ 'rpc.method': '_OTHER', 'rpc.status_code': 'UNIMPLEMENTED', 'error.type': 'UNIMPLEMENTED' }),
        status: expect.objectContaining({ code: SpanStatusCode.ERROR }),
      }),
    ]);
  });

  it('rpc.server.call.duration: seconds, per method and status, the failures with error.type', async () => {
    const { metrics } = await collectTelemetry(WORKERS);
    const points = metrics.filter((metric) => metric.name === 'rpc.server.call.duration' && metric.unit === 's').flatMap((metric) => metric.points);
    const attributesOf = (status: string) =>
      points.filter((point) => point.attributes['rpc.status_code'] === status && point.attributes['rpc.method'] === 'kmux.example.v1.Pricing/GetPrice');
    expect(attributesOf('OK').reduce((sum, point) => sum + point.count, 0)).toBe(2);
    expect(attributesOf('NOT_FOUND').map((point) => point.attributes)).toEqual([
      { 'rpc.system.name': 'kmux_protobuf', 'rpc.method': 'kmux.example.v1.Pricing/GetPrice', 'rpc.status_code': 'NOT_FOUND' },
    ]);
    expect(attributesOf('INTERNAL').map((point) => point.attributes['error.type'])).toEqual(['INTERNAL']);
  });
});
