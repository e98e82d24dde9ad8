/**
 * The gRPC load driver: the native generator's closed and open loops (warm-up, measured
 * window, drain) against a gRPC server, through grpc-js clients in `processes` child
 * processes (grpc-js's client costs more CPU per call than its server). It answers with the
 * native generator's LoadResult, so the rows compare; but its clients are Node, so it runs
 * out of CPU far sooner than that generator does.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Histogram } from '@kmux/core';
import type { LoadEvents, LoadResult } from '../load/load-generator.js';
import type { GrpcCall, GrpcDriverCommand, GrpcDriverReport, GrpcShareResult } from './grpc-load-messages.js';

export interface GrpcLoadSpec {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  /** Closed loop: calls kept in flight per connection. */
  readonly depth: number;
  /** Open loop, when set: calls per second in all, on a fixed schedule; `depth` is then unused. */
  readonly ratePerSecond?: number;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** How long to wait, after measuring, for calls still in flight before calling them lost. */
  readonly drainTimeoutMs: number;
  readonly calls: readonly GrpcCall[];
  /** Client processes the connections are spread over (at most one per connection). */
  readonly processes: number;
}

const ENTRY = new URL('./grpc-load-process.js', import.meta.url);
const PRECISION_BITS = 7;
const PROGRESS_INTERVAL_MS = 1000;

/** Runs a gRPC load; phases are timed here and announced to every client process at once. */
export async function runGrpcLoad(spec: GrpcLoadSpec, events: LoadEvents = {}): Promise<LoadResult> {
  if (!(spec.processes >= 1 && spec.processes <= spec.connections)) {
    throw new RangeError(`processes must be 1..connections (${spec.connections}), got ${spec.processes}`);
  }
  if (spec.calls.length === 0) throw new Error('a gRPC load needs at least one call');
  if (spec.ratePerSecond !== undefined && !(spec.ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be positive, got ${spec.ratePerSecond}`);
  const aborted = new AbortController();
  let fatal: string | null = null;
  const counts = new Array<number>(spec.processes).fill(0);
  const results: Promise<GrpcShareResult>[] = [];
  const ready: Promise<void>[] = [];
  const children: ChildProcess[] = [];

  for (let i = 0; i < spec.processes; i++) {
    // 'advanced' serialization carries the requests' Buffers as bytes.
    const child = fork(ENTRY, [], { serialization: 'advanced', stdio: 'inherit' });
    children.push(child);
    const exited = once(child, 'exit').then(([code, signal]) => {
      throw new Error(`gRPC client process exited early (code ${code}, signal ${signal})`);
    });
    let onReady!: () => void;
    let onResult!: (result: GrpcShareResult) => void;
    let onFailed!: (error: Error) => void;
    const failed = new Promise<never>((_, reject) => (onFailed = reject));
    ready.push(Promise.race([new Promise<void>((resolve) => (onReady = resolve)), failed, exited]));
    results.push(Promise.race([new Promise<GrpcShareResult>((resolve) => (onResult = resolve)), failed, exited]));
    child.on('message', (report: GrpcDriverReport) => {
      if (report.type === 'ready') onReady();
      else if (report.type === 'count') counts[i] = report.completed;
      else if (report.type === 'result') onResult(report.result);
      else if (report.type === 'failed') onFailed(new Error(`gRPC client process failed: ${report.message}`));
      else {
        fatal ??= report.message;
        aborted.abort();
      }
    });
    // Connections spread evenly: the first `connections % processes` take one more.
    const connections = Math.floor(spec.connections / spec.processes) + (i < spec.connections % spec.processes ? 1 : 0);
    const { host, port, depth, drainTimeoutMs, calls } = spec;
    const ratePerSecond = spec.ratePerSecond === undefined ? undefined : (spec.ratePerSecond * connections) / spec.connections;
    command(child, { type: 'start', share: { host, port, connections, depth, ratePerSecond, drainTimeoutMs, calls } });
  }
  // Results are awaited later; a process that fails first fails `ready` too.
  for (const result of results) result.catch(() => undefined);

  try {
    await Promise.all(ready);
    const progress = startProgress(counts, events);
    children.forEach((child) => command(child, { type: 'run' }));
    await phase(spec.warmupSeconds, aborted.signal);
    progress.enterMeasure();
    children.forEach((child) => command(child, { type: 'measure' }));
    events.onMeasureStart?.();
    const started = process.hrtime.bigint();
    await phase(spec.durationSeconds, aborted.signal);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    children.forEach((child) => command(child, { type: 'stop' }));
    events.onMeasureEnd?.();
    progress.stop();
    return merge(spec, seconds, await Promise.all(results), fatal);
  } catch (error) {
    for (const child of children) child.kill();
    throw error;
  }
}

function command(child: ChildProcess, message: GrpcDriverCommand): void {
  child.send(message);
}

function merge(spec: GrpcLoadSpec, seconds: number, shares: readonly GrpcShareResult[], fatal: string | null): LoadResult {
  const overall = new Histogram(PRECISION_BITS);
  const perCall = spec.calls.map(() => ({ histogram: new Histogram(PRECISION_BITS), errors: 0 }));
  for (const share of shares) {
    overall.mergeData(share.latency);
    share.perCall.forEach((c, i) => {
      perCall[i]!.histogram.mergeData(c.latency);
      perCall[i]!.errors += c.errors;
    });
  }
  const sum = (pick: (share: GrpcShareResult) => number) => shares.reduce((total, share) => total + pick(share), 0);
  const requests = sum((s) => s.requests);
  const open = spec.ratePerSecond !== undefined;
  return {
    connections: spec.connections,
    depth: open ? 0 : spec.depth,
    seconds,
    requests,
    requestsPerSecond: requests / seconds,
    errors: sum((s) => s.errors),
    lost: sum((s) => s.lost),
    latency: overall.summary(),
    perTemplate: spec.calls.map((call, i) => ({
      label: call.label ?? call.method,
      requests: perCall[i]!.histogram.count,
      errors: perCall[i]!.errors,
      latency: perCall[i]!.histogram.summary(),
    })),
    generatorCpuPercent: (sum((s) => s.cpuMicros) / 1e6 / seconds) * 100,
    ...(open ? { maxSendLagUs: Math.max(...shares.map((s) => s.maxSendLagUs)) } : {}),
    fatal,
  };
}

/** Waits for a phase to end, or returns early when the run is aborted. */
async function phase(seconds: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || seconds <= 0) return;
  await sleep(seconds * 1000, undefined, { signal }).catch(() => undefined);
}

/** Reports the reply rate of all processes together once a second. */
function startProgress(counts: readonly number[], events: LoadEvents) {
  const total = () => counts.reduce((a, b) => a + b, 0);
  let phaseName: 'warmup' | 'measure' = 'warmup';
  let phaseStart = Date.now();
  let last = { count: total(), time: phaseStart };
  const timer = setInterval(() => {
    const now = { count: total(), time: Date.now() };
    events.onProgress?.({
      phase: phaseName,
      elapsedSeconds: (now.time - phaseStart) / 1000,
      recentRate: ((now.count - last.count) * 1000) / (now.time - last.time),
    });
    last = now;
  }, PROGRESS_INTERVAL_MS);
  return {
    enterMeasure(): void {
      phaseName = 'measure';
      phaseStart = Date.now();
    },
    stop(): void {
      clearInterval(timer);
    },
  };
}
