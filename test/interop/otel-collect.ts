// What the workers' OpenTelemetry SDKs exported (fixtures/otel-sdk.mjs), gathered from each
// worker thread over a BroadcastChannel.
import { BroadcastChannel } from 'node:worker_threads';

const OTEL_CHANNEL = 'kmux-otel-test';

export interface ExportedSpan {
  name: string;
  kind: number;
  traceId: string;
  traceState?: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  status: { code: number; message?: string };
  durationMs: number;
}

export interface HistogramPoint {
  attributes: Record<string, unknown>;
  count: number;
  sum: number;
  boundaries: number[];
}

export interface ExportedMetric {
  name: string;
  unit: string;
  points: HistogramPoint[];
}

/** Every span and metric the `workers` worker threads' SDKs hold now. */
export async function collectTelemetry(workers: number): Promise<{ spans: ExportedSpan[]; metrics: ExportedMetric[] }> {
  const channel = new BroadcastChannel(OTEL_CHANNEL);
  const replies: { spans: ExportedSpan[]; metrics: ExportedMetric[] }[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${replies.length} of ${workers} workers sent their telemetry`)), 5_000);
      channel.onmessage = (event) => {
        const { data } = event as MessageEvent;
        if (data === 'collect') return;
        replies.push(data);
        if (replies.length === workers) {
          clearTimeout(timer);
          resolve();
        }
      };
      channel.postMessage('collect');
    });
  } finally {
    channel.close();
  }
  return { spans: replies.flatMap((reply) => reply.spans), metrics: replies.flatMap((reply) => reply.metrics) };
}

/** A fresh W3C trace context as a client sends it: its trace id, parent span id and `traceparent`. */
export function clientTraceContext() {
  const hex = (bytes: number) => [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const traceId = hex(16);
  const parentSpanId = hex(8);
  return { traceId, parentSpanId, traceparent: `00-${traceId}-${parentSpanId}-01` };
}
