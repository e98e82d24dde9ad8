/**
 * Runs the native load generator (native/, built into native/build/kmux-loadgen by the
 * package build) in its own process: writes the run's spec and request templates on its
 * stdin, turns its JSON lines into progress events and a LoadResult. The generator ships
 * histogram buckets in @kmux/core's layout; percentiles are computed here, by core's code.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Histogram } from '@kmux/core';
import type { LoadEvents, LoadResult, PercentileCurve } from './load-generator.js';
import { mixSchedule } from './request-mix.js';
import type { RequestTemplate } from './request-template.js';

export const LOADGEN = fileURLToPath(new URL('../../native/build/kmux-loadgen', import.meta.url));

/** 1/128: the generator's histograms (native/histogram.h) use the same precision. */
const PRECISION_BITS = 7;
const CURVE_PERCENTS = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100];

/**
 * closed: `depth` requests in flight per connection, each reply sending the next.
 * open: `ratePerSecond` requests on a fixed schedule, latency from each one's intended send time.
 * idle: connections held open without traffic, then one request on each to prove them alive.
 */
export type LoadShape =
  | { readonly kind: 'closed'; readonly depth: number }
  | { readonly kind: 'open'; readonly ratePerSecond: number }
  | { readonly kind: 'idle' };

export interface NativeLoadSpec {
  readonly host: string;
  readonly port: number;
  readonly protocol: 'thrift' | 'protobuf';
  readonly connections: number;
  readonly shape: LoadShape;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** How long to wait, after measuring, for requests still in flight before calling them lost. */
  readonly drainTimeoutMs: number;
  readonly templates: readonly RequestTemplate[];
  /** sched_setaffinity CPU lists ("1", "0-2"): the generator's, and the server process's. */
  readonly pin?: { readonly generatorCpus: string; readonly serverPid: number; readonly serverCpus: string };
}

interface GeneratorHistogram {
  readonly total: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly buckets: readonly (readonly [number, number])[];
}

type GeneratorLine =
  | { type: 'progress'; phase: 'connect' | 'warmup' | 'measure' | 'drain'; elapsedSeconds: number; recentRate: number }
  | { type: 'measure-start' }
  | { type: 'measure-end' }
  | { type: 'failed'; message: string }
  | {
      type: 'result';
      connections: number;
      seconds: number;
      lost: number;
      cpuPercent: number;
      maxSendLagUs: number;
      fatal: string | null;
      classes: { label: string; errors: number; latency: GeneratorHistogram }[];
    };

export async function runNativeLoad(spec: NativeLoadSpec, events: LoadEvents = {}): Promise<LoadResult> {
  if (!existsSync(LOADGEN)) throw new Error(`${LOADGEN} is missing: build the bench (make -C packages/bench/native)`);
  const child = spawn(LOADGEN, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.stdin.end(encodeSpec(spec));
  let result: Extract<GeneratorLine, { type: 'result' }> | undefined;
  let failure: string | undefined;
  for await (const text of createInterface({ input: child.stdout })) {
    const line = JSON.parse(text) as GeneratorLine;
    if (line.type === 'progress') events.onProgress?.(line);
    else if (line.type === 'measure-start') events.onMeasureStart?.();
    else if (line.type === 'measure-end') events.onMeasureEnd?.();
    else if (line.type === 'failed') failure = line.message;
    else result = line;
  }
  const [code, signal] = await exited;
  if (failure !== undefined) throw new Error(`load generator: ${failure}`);
  if (result === undefined) throw new Error(`load generator exited without a result (code ${code}, signal ${signal})`);
  return toLoadResult(spec, result);
}

/** The spec in the generator's format (native/spec.h): key-value lines, each template followed by its bytes. */
function encodeSpec(spec: NativeLoadSpec): Buffer {
  const { shape } = spec;
  const lines = [
    `protocol ${spec.protocol}`,
    `host ${spec.host}`,
    `port ${spec.port}`,
    `connections ${spec.connections}`,
    `depth ${shape.kind === 'closed' ? shape.depth : 1}`,
    `rate ${shape.kind === 'open' ? shape.ratePerSecond : 0}`,
    `idle ${shape.kind === 'idle' ? 1 : 0}`,
    `warmup ${spec.warmupSeconds}`,
    `duration ${spec.durationSeconds}`,
    `drain ${spec.drainTimeoutMs / 1000}`,
    `schedule ${Array.from(mixSchedule(spec.templates)).join(' ')}`,
    ...(spec.pin
      ? [`cpus ${spec.pin.generatorCpus}`, `server-pid ${spec.pin.serverPid}`, `server-cpus ${spec.pin.serverCpus}`]
      : []),
  ];
  const parts: Buffer[] = [Buffer.from(`${lines.join('\n')}\n`)];
  for (const t of spec.templates) {
    if (/\s/.test(t.label)) throw new Error(`template label '${t.label}' has whitespace`);
    parts.push(Buffer.from(`template ${t.label} ${t.idAt} ${t.frame.length}\n`), t.frame);
  }
  parts.push(Buffer.from('end\n'));
  return Buffer.concat(parts);
}

function toHistogram(data: GeneratorHistogram): Histogram {
  const histogram = new Histogram(PRECISION_BITS);
  const counts = new Float64Array(histogram.toData().counts.length);
  for (const [index, count] of data.buckets) counts[index] = count;
  const merged: ReturnType<Histogram['toData']> = { counts, total: data.total, sum: data.sum, min: data.total ? data.min : Infinity, max: data.max };
  histogram.mergeData(merged);
  return histogram;
}

function curveOf(histogram: Histogram): PercentileCurve {
  return CURVE_PERCENTS.map((p) => [p, p === 0 ? histogram.summary().min : histogram.percentile(p)] as const);
}

function toLoadResult(spec: NativeLoadSpec, line: Extract<GeneratorLine, { type: 'result' }>): LoadResult {
  const overall = new Histogram(PRECISION_BITS);
  const perTemplate = line.classes.map((c) => {
    const histogram = toHistogram(c.latency);
    overall.merge(histogram);
    return { label: c.label, requests: histogram.count, errors: c.errors, latency: histogram.summary(), curve: curveOf(histogram) };
  });
  return {
    connections: line.connections,
    depth: spec.shape.kind === 'closed' ? spec.shape.depth : 0,
    seconds: line.seconds,
    requests: overall.count,
    requestsPerSecond: overall.count / line.seconds,
    errors: perTemplate.reduce((sum, t) => sum + t.errors, 0),
    lost: line.lost,
    latency: overall.summary(),
    curve: curveOf(overall),
    perTemplate,
    generatorCpuPercent: line.cpuPercent,
    maxSendLagUs: line.maxSendLagUs,
    fatal: line.fatal,
  };
}
