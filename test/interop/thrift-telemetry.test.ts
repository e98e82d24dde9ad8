// OpenTelemetry for Thrift calls, read back from the SDK's in-memory exporters that each worker
// registers in its handler's init(): a SERVER span per call, made in the worker that ran it,
// continued from a THeader's traceparent, named "Service/method" when multiplexed, with the
// status of a failed or declared-exception call; and the rpc.server.call.duration histogram.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Server } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { EXAMPLE_DIR, catalogTypes, startServer, stockClient, thrift } from './catalog.js';
import { Catalog, Inventory, stockMultiplexedClients } from './multiplexed.js';
import { clientTraceContext, collectTelemetry, type ExportedSpan } from './otel-collect.js';
import { headerClient } from './theader-client.js';

const TRACED_HANDLER = fileURLToPath(new URL('./fixtures/traced-catalog-handler.mjs', import.meta.url));
const WORKERS = 2;
const { TApplicationException } = thrift.Thrift;

// The worker runs the call whichever thread split the frames: the main thread, the kernel (sockmap), or the addon's I/O thread.
for (const transport of ['userspace', 'sockmap', 'native'] as const) describe(`OpenTelemetry, Thrift over ${transport}: Catalog and Inventory on one port, Catalog the default service`, () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    const services = {
      Catalog: { service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: TRACED_HANDLER },
      Inventory: { service: `${EXAMPLE_DIR}gen-nodejs/Inventory.js`, handler: `${EXAMPLE_DIR}inventory-handler.js` },
    };
    ({ server, port } = await startServer(thriftCodec({ services, defaultService: 'Catalog', protocol: 'binary' }), { workers: WORKERS, transport }));
    expect(server.transport?.name).toBe(transport);
  });
  afterAll(() => server.close());

  /** The one span whose attributes include `attributes`, or a failure naming what there was. */
  async function spanWith(attributes: Record<string, unknown>): Promise<ExportedSpan> {
    const { spans } = await collectTelemetry(WORKERS);
    const matching = spans.filter((span) => Object.entries(attributes).every(([key, value]) => span.attributes[key] === value));
    expect(matching, JSON.stringify(spans.map((span) => span.attributes))).toHaveLength(1);
    return matching[0]!;
  }

  it('a THeader call with a traceparent: the server span is the client span\'s child, in the same trace', async () => {
    const { traceId, parentSpanId, traceparent } = clientTraceContext();
    const { call, close } = headerClient(port, 'binary', { traceparent, tracestate: 'vendor=kmux' });
    try {
      expect(await call('sleep', 7)).toBe(7);
    } finally {
      close();
    }
    const { spans } = await collectTelemetry(WORKERS);
    const span = spans.find((s) => s.traceId === traceId);
    expect(span).toMatchObject({
      name: 'Catalog/sleep',
      kind: SpanKind.SERVER,
      parentSpanId,
      traceState: 'vendor=kmux',
      attributes: { 'rpc.system.name': 'thrift', 'rpc.method': 'Catalog/sleep' },
      status: { code: SpanStatusCode.UNSET },
    });
    expect(span!.durationMs).toBeGreaterThanOrEqual(6);
    expect(span!.attributes).not.toHaveProperty('error.type');
  });

  it('framed calls, multiplexed and bare: "Service/method", each a new trace without a client context', async () => {
    const { calls, close } = stockMultiplexedClients(port, 'binary', { Catalog, Inventory });
    const bare = stockClient(port, 'binary');
    try {
      expect(await calls.Inventory!('stock', 'mn-003')).toBe(3);
      expect(await bare.call('echo', Buffer.from('bare'))).toEqual(Buffer.from('bare'));
    } finally {
      close();
      bare.close();
    }
    const stock = await spanWith({ 'rpc.method': 'Inventory/stock' });
    expect(stock).toMatchObject({ name: 'Inventory/stock', kind: SpanKind.SERVER, attributes: { 'rpc.system.name': 'thrift' } });
    expect(stock.parentSpanId).toBeUndefined();
    expect(await spanWith({ 'rpc.method': 'Catalog/echo' })).toMatchObject({ name: 'Catalog/echo', status: { code: SpanStatusCode.UNSET } });
  });

  it('a handler that throws: INTERNAL_ERROR as rpc.status_code and error.type, span status ERROR with the message', async () => {
    const { call, close } = stockClient(port, 'binary');
    try {
      await expect(call('echo', Buffer.from('boom'))).rejects.toBeInstanceOf(TApplicationException);
    } finally {
      close();
    }
    const { spans } = await collectTelemetry(WORKERS);
    const failed = spans.filter((span) => span.attributes['error.type'] !== undefined && span.attributes['rpc.method'] === 'Catalog/echo');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      attributes: { 'rpc.status_code': 'INTERNAL_ERROR', 'error.type': 'INTERNAL_ERROR' },
      status: { code: SpanStatusCode.ERROR, message: 'boom' },
    });
  });

  it('a declared exception is an answer: rpc.status_code is its IDL name, no error.type, status unset', async () => {
    const { call, close } = stockClient(port, 'binary');
    try {
      await expect(call('lookup', new catalogTypes.Query({ sku: 'nope' }))).rejects.toBeInstanceOf(catalogTypes.ItemNotFound);
    } finally {
      close();
    }
    const span = await spanWith({ 'rpc.method': 'Catalog/lookup', 'rpc.status_code': 'ItemNotFound' });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.attributes).not.toHaveProperty('error.type');
  });

  it('an unknown service: rpc.method _OTHER, the name sent in rpc.method_original, span named thrift, UNKNOWN_METHOD', async () => {
    const { calls, close } = stockMultiplexedClients(port, 'binary', { Nope: Inventory });
    try {
      await expect(calls.Nope!('stock', 'kb-001')).rejects.toMatchObject({ type: thrift.Thrift.TApplicationExceptionType.UNKNOWN_METHOD });
    } finally {
      close();
    }
    const span = await spanWith({ 'rpc.method_original': 'Nope:stock' });
    expect(span).toMatchObject({
      name: 'thrift',
      attributes: { 'rpc.method': '_OTHER', 'rpc.status_code': 'UNKNOWN_METHOD', 'error.type': 'UNKNOWN_METHOD' },
      status: { code: SpanStatusCode.ERROR },
    });
  });

  it('rpc.server.call.duration: a histogram in seconds, per method and outcome, as long as the spans', async () => {
    const { call, close } = stockClient(port, 'binary');
    try {
      for (const ms of [20, 20, 20]) expect(await call('sleep', ms)).toBe(ms);
    } finally {
      close();
    }
    const { metrics, spans } = await collectTelemetry(WORKERS);
    const histograms = metrics.filter((metric) => metric.name === 'rpc.server.call.duration');
    // One per worker that ran a call (a transport may have given them all to one).
    expect(histograms.length).toBeGreaterThanOrEqual(1);
    expect(histograms.every((metric) => metric.unit === 's')).toBe(true);
    const points = histograms.flatMap((metric) => metric.points);
    const sleeps = points.filter((point) => point.attributes['rpc.method'] === 'Catalog/sleep');
    expect(sleeps.every((point) => point.boundaries.join() === '0.005,0.01,0.025,0.05,0.075,0.1,0.25,0.5,0.75,1,2.5,5,7.5,10')).toBe(true);
    expect(sleeps.every((point) => Object.keys(point.attributes).sort().join() === 'rpc.method,rpc.system.name')).toBe(true);
    // The THeader test's sleep(7) and these three.
    const sleepSpans = spans.filter((span) => span.attributes['rpc.method'] === 'Catalog/sleep');
    expect(sleeps.reduce((sum, point) => sum + point.count, 0)).toBe(4);
    const seconds = sleeps.reduce((sum, point) => sum + point.sum, 0);
    expect(seconds).toBeGreaterThanOrEqual(0.067);
    expect(seconds * 1000).toBeCloseTo(sleepSpans.reduce((sum, span) => sum + span.durationMs, 0), 3);
    const failures = points.filter((point) => point.attributes['error.type'] === 'INTERNAL_ERROR');
    expect(failures.map((point) => point.attributes)).toEqual([
      { 'rpc.system.name': 'thrift', 'rpc.method': 'Catalog/echo', 'rpc.status_code': 'INTERNAL_ERROR', 'error.type': 'INTERNAL_ERROR' },
    ]);
    expect(points.some((point) => 'rpc.method_original' in point.attributes)).toBe(false);
  });
});
