import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionDriver, LoadFatalError, MAX_CONNECTIONS } from './connection-driver.js';
import type { Percentiles as LatencySummary } from '@kmux/core';
import { LoadRecorder } from './load-recorder.js';
import { mixSchedule } from './request-mix.js';
import type { RequestTemplate } from './request-template.js';

export interface LoadSpec {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  /** Requests kept in flight per connection. */
  readonly depth: number;
  /** Load applied before measuring, then discarded (JIT, connection setup, pools). */
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** How long to wait, after measuring, for requests still in flight before calling them lost. */
  readonly drainTimeoutMs: number;
  readonly templates: readonly RequestTemplate[];
}

export interface LoadProgress {
  readonly phase: 'warmup' | 'measure';
  readonly elapsedSeconds: number;
  /** Replies per second over the last progress interval. */
  readonly recentRate: number;
}

export interface LoadEvents {
  onProgress?(progress: LoadProgress): void;
  /** Called as the measured window opens and closes, e.g. to sample a server's CPU. */
  onMeasureStart?(): void;
  onMeasureEnd?(): void;
}

export interface TemplateResult {
  readonly label: string;
  readonly requests: number;
  readonly errors: number;
  readonly latency: LatencySummary;
}

export interface LoadResult {
  readonly connections: number;
  readonly depth: number;
  readonly seconds: number;
  /** Replies received in the measured window. */
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** Replies of message type EXCEPTION. */
  readonly errors: number;
  /** Requests still unanswered when the drain timeout ran out. */
  readonly lost: number;
  readonly latency: LatencySummary;
  readonly perTemplate: readonly TemplateResult[];
  /** The generator's own CPU use in the window, in percent of one core. */
  readonly generatorCpuPercent: number;
  /** Why the run was aborted (misroute, bad reply, lost connection), or null. */
  readonly fatal: string | null;
}

const PROGRESS_INTERVAL_MS = 1000;

/**
 * Closed-loop load: `connections` sockets × `depth` requests in flight each, for a
 * warm-up and then a measured window. Fails fast on a fatal error (misroute etc.).
 */
export async function runLoad(spec: LoadSpec, events: LoadEvents = {}): Promise<LoadResult> {
  if (spec.connections < 1 || spec.connections > MAX_CONNECTIONS) {
    throw new RangeError(`connections must be 1..${MAX_CONNECTIONS}`);
  }
  const recorder = new LoadRecorder(spec.templates);
  const schedule = mixSchedule(spec.templates);
  // The first fatal error wins; it cuts the current phase short.
  const failure: { error: LoadFatalError | null } = { error: null };
  const aborted = new AbortController();
  let stopping = false;
  const onFatal = (error: LoadFatalError): void => {
    failure.error ??= error;
    aborted.abort();
  };

  const sockets = await Promise.all(
    Array.from({ length: spec.connections }, () => openSocket(spec.host, spec.port)),
  );
  const drivers = sockets.map((socket, index) => {
    // Once stopping, the bench closes the sockets itself; only earlier losses are failures.
    socket.on('error', (error) => {
      if (!stopping) onFatal(new LoadFatalError('connection', `connection ${index}: ${error.message}`));
    });
    socket.on('close', () => {
      if (!stopping) onFatal(new LoadFatalError('connection', `connection ${index} closed by the server`));
    });
    return new ConnectionDriver(socket, index, spec.depth, spec.templates, schedule, recorder, onFatal);
  });

  const progress = startProgress(recorder, events);
  for (const driver of drivers) driver.start();

  await phase(spec.warmupSeconds, aborted.signal);
  recorder.reset();
  progress.enterMeasure();
  events.onMeasureStart?.();
  const cpuStart = process.cpuUsage();
  const started = process.hrtime.bigint();

  await phase(spec.durationSeconds, aborted.signal);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  events.onMeasureEnd?.();
  progress.stop();
  const measured = {
    requests: recorder.completed,
    errors: recorder.errors,
    latency: recorder.overall.summary(),
    perTemplate: spec.templates.map((t, i) => ({
      label: t.label,
      requests: recorder.perTemplate[i].count,
      errors: recorder.errorsPerTemplate[i],
      latency: recorder.perTemplate[i].summary(),
    })),
  };

  stopping = true;
  const drained = Promise.all(drivers.map((d) => d.stop()));
  // After a fatal error the in-flight count means nothing; don't wait for it.
  if (failure.error === null) await Promise.race([drained, sleep(spec.drainTimeoutMs)]);
  const lost = drivers.reduce((sum, d) => sum + d.outstanding, 0);
  await Promise.all(sockets.map(closeSocket));

  return {
    connections: spec.connections,
    depth: spec.depth,
    seconds,
    ...measured,
    requestsPerSecond: measured.requests / seconds,
    lost,
    generatorCpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
    fatal: failure.error?.message ?? null,
  };
}

async function openSocket(host: string, port: number): Promise<Socket> {
  const socket = connect({ host, port, noDelay: true });
  await once(socket, 'connect');
  return socket;
}

async function closeSocket(socket: Socket): Promise<void> {
  if (socket.destroyed) return;
  socket.end();
  await Promise.race([once(socket, 'close'), sleep(1000)]);
  socket.destroy();
}

/** Waits for a phase to end, or returns early when the run is aborted. */
async function phase(seconds: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || seconds <= 0) return;
  await sleep(seconds * 1000, undefined, { signal }).catch(() => undefined);
}

function startProgress(recorder: LoadRecorder, events: LoadEvents) {
  let phaseName: LoadProgress['phase'] = 'warmup';
  let phaseStart = Date.now();
  let lastCount = 0;
  let lastTime = phaseStart;
  const timer = setInterval(() => {
    const now = Date.now();
    const count = recorder.completed;
    events.onProgress?.({
      phase: phaseName,
      elapsedSeconds: (now - phaseStart) / 1000,
      recentRate: ((count - lastCount) * 1000) / (now - lastTime),
    });
    lastCount = count;
    lastTime = now;
  }, PROGRESS_INTERVAL_MS);
  return {
    /** The recorder was just reset: count from zero again. */
    enterMeasure(): void {
      phaseName = 'measure';
      phaseStart = lastTime = Date.now();
      lastCount = 0;
    },
    stop(): void {
      clearInterval(timer);
    },
  };
}
