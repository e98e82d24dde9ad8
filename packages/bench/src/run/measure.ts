import { cpus } from 'node:os';
import type { Percentiles as LatencySummary } from '@kmux/core';
import { loadService } from '@kmux/protobuf';
import { CpuWindow, processRssBytes } from '../cpu/process-cpu.js';
import { ThreadWork, type ThreadWorkCounts } from '../cpu/thread-work.js';
import { runGrpcLoad } from '../grpc/grpc-load.js';
import type { LoadEvents, LoadResult, PercentileCurve, TemplateResult } from '../load/load-generator.js';
import { runNativeLoad, type LoadShape } from '../load/native-load.js';
import { encodeProtobufCall, encodeThriftCall, type CallSpec, type ProtobufService } from '../load/request-template.js';
import { startPeer, type PeerName, type RunningPeer } from '../peers/spawn-peer.js';
import { callsOnlyEcho, callsOnlyProtobufMethods, type Scenario } from '../scenarios.js';
import { catalogService } from '../service/catalog.js';
import { CATALOG_PROTO, CATALOG_PROTO_SERVICE } from '../service/catalog-proto.js';

export interface MeasureOptions {
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** Measured seconds of the closed-loop capacity probe before an open-loop run. */
  readonly probeSeconds: number;
  /** Worker threads for servers that have them. */
  readonly workers: number;
  readonly transport?: string;
  readonly kmuxOptions?: Readonly<Record<string, unknown>>;
  /** Pin the generator to the last CPU and the server to the others (native generator only). */
  readonly pin: boolean;
  readonly cpuProfileDir?: string;
  readonly onProgress?: LoadEvents['onProgress'];
  /** A new stage of the run starts (the probe, the measured run). */
  readonly onStage?: (text: string) => void;
}

/** One row of the results: one server under one scenario. */
export interface Measurement
  extends Pick<
    LoadResult,
    'connections' | 'depth' | 'seconds' | 'requests' | 'requestsPerSecond' | 'errors' | 'lost' | 'fatal' | 'generatorCpuPercent' | 'maxSendLagUs'
  > {
  readonly scenario: string;
  readonly server: PeerName;
  readonly latencyUs: LatencySummary;
  readonly curve?: PercentileCurve;
  /** Latency per call class (e.g. the mixed scenario's fast and slow calls). */
  readonly perClass: readonly TemplateResult[];
  /** CPU of the whole server process (all threads), percent of one core. */
  readonly serverCpuPercent: number;
  /** The server's system calls (all threads, and its main thread) and voluntary context switches in the measured window. */
  readonly serverWork: ThreadWorkCounts;
  /**
   * CPU the rest of the machine used meanwhile (other processes, the bench itself), percent
   * of one core. More than a few percent means the numbers are not the servers' alone.
   */
  readonly otherCpuPercent: number;
  /** Open loop: the closed-loop capacity the probe measured, and the rate then offered. */
  readonly capacityPerSecond?: number;
  readonly offeredPerSecond?: number;
  /** Idle: the server's resident memory before connecting and with every connection open. */
  readonly rssBeforeBytes?: number;
  readonly rssBytes?: number;
  readonly rssPerConnectionBytes?: number;
  readonly transport: string | null;
  readonly workerRequests: number[] | null;
}

let protobufService: Promise<ProtobufService> | undefined;

/** Each call as the bytes the peer's protocol expects. */
async function templatesFor(peer: RunningPeer, calls: readonly CallSpec[]) {
  if (peer.protocol === 'kmux-protobuf') {
    const service = await (protobufService ??= loadService(CATALOG_PROTO, CATALOG_PROTO_SERVICE));
    return calls.map((call) => encodeProtobufCall(service, call));
  }
  return calls.map((call) => encodeThriftCall(catalogService.Client, call));
}

/**
 * Generator on the last CPU, the server on the others: on 2 CPUs this halves what a
 * multi-threaded server may use, so the bench pins only when asked (see README).
 */
function pinning(peer: RunningPeer) {
  const last = cpus().length - 1;
  return { generatorCpus: String(last), serverPid: peer.pid, serverCpus: last > 1 ? `0-${last - 1}` : '0' };
}

interface Drive {
  readonly connections: number;
  readonly shape: LoadShape;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
}

async function drive(peer: RunningPeer, calls: readonly CallSpec[], load: Drive, options: MeasureOptions, events: LoadEvents) {
  const common = { host: '127.0.0.1', port: peer.port, connections: load.connections, drainTimeoutMs: 5000 };
  if (peer.protocol === 'grpc') {
    const { shape } = load;
    if (shape.kind === 'idle') throw new Error('the gRPC driver has no idle mode');
    return runGrpcLoad(
      {
        ...common,
        depth: shape.kind === 'closed' ? shape.depth : 1,
        ratePerSecond: shape.kind === 'open' ? shape.ratePerSecond : undefined,
        warmupSeconds: load.warmupSeconds,
        durationSeconds: load.durationSeconds,
        calls: calls.map((call) => ({ method: call.method as 'echo' | 'hashRounds', request: grpcRequest(call), weight: call.weight, label: call.label })),
        // grpc-js's client costs about what its server does per call: two processes keep it from being the limit.
        processes: Math.min(2, load.connections),
      },
      events,
    );
  }
  return runNativeLoad(
    {
      ...common,
      protocol: peer.protocol === 'kmux-protobuf' ? 'protobuf' : 'thrift',
      shape: load.shape,
      warmupSeconds: load.warmupSeconds,
      durationSeconds: load.durationSeconds,
      templates: await templatesFor(peer, calls),
      pin: options.pin ? pinning(peer) : undefined,
    },
    events,
  );
}

/** The Thrift arguments as the protobuf request message (proto/catalog.proto mirrors the IDL). */
function grpcRequest(call: CallSpec): Record<string, unknown> {
  return call.method === 'echo' ? { data: call.args[0] } : { data: call.args[0], rounds: call.args[1] };
}

/** Why `server` cannot run `scenario`, or null when it can. */
export function notApplicable(scenario: Scenario, echoOnly: boolean, protocol: string): string | null {
  if (echoOnly && !callsOnlyEcho(scenario)) return 'serves echo only';
  if (protocol === 'grpc' && scenario.load.kind === 'idle') return 'the gRPC driver has no idle mode';
  if ((protocol === 'grpc' || protocol === 'kmux-protobuf') && !callsOnlyProtobufMethods(scenario)) {
    return 'calls a method catalog.proto lacks';
  }
  return null;
}

/** Starts `server` in its own process, drives it with the scenario from another, and stops it. */
export async function measure(scenario: Scenario, server: PeerName, options: MeasureOptions): Promise<Measurement> {
  const peer = await startPeer(server, {
    workers: options.workers,
    transport: options.transport,
    kmuxOptions: options.kmuxOptions,
    cpuProfileDir: options.cpuProfileDir,
  });
  const { load, calls } = scenario;
  const serverCpu = CpuWindow.ofProcess(peer.pid);
  const machineCpu = CpuWindow.ofMachine();
  const work = new ThreadWork(peer.pid);
  let workCounted: Promise<void> = Promise.resolve();
  let rssBytes: number | undefined;
  const events: LoadEvents = {
    onProgress: options.onProgress,
    onMeasureStart: () => {
      serverCpu.start();
      machineCpu.start();
      work.start();
    },
    onMeasureEnd: () => {
      serverCpu.stop();
      machineCpu.stop();
      workCounted = work.stop();
      if (load.kind === 'idle') rssBytes = processRssBytes(peer.pid);
    },
  };
  const timing = { warmupSeconds: options.warmupSeconds, durationSeconds: options.durationSeconds };
  let rssBeforeBytes: number | undefined;
  let capacityPerSecond: number | undefined;
  let offeredPerSecond: number | undefined;
  try {
    let result: LoadResult;
    if (load.kind === 'closed') {
      result = await drive(peer, calls, { ...timing, connections: load.connections, shape: { kind: 'closed', depth: load.depth } }, options, events);
    } else if (load.kind === 'fixed-rate') {
      offeredPerSecond = load.ratePerSecond;
      result = await drive(peer, calls, { ...timing, connections: load.connections, shape: { kind: 'open', ratePerSecond: offeredPerSecond } }, options, events);
    } else if (load.kind === 'capacity-fraction') {
      options.onStage?.('probing capacity (closed loop)');
      const probeTiming = { warmupSeconds: Math.min(1, options.warmupSeconds), durationSeconds: options.probeSeconds };
      const probe = await drive(peer, calls, { ...probeTiming, connections: load.probe.connections, shape: { kind: 'closed', depth: load.probe.depth } }, options, { onProgress: options.onProgress });
      if (probe.fatal) throw new Error(`capacity probe failed: ${probe.fatal}`);
      capacityPerSecond = probe.requestsPerSecond;
      offeredPerSecond = Math.max(1, Math.round(capacityPerSecond * load.loadFraction));
      options.onStage?.(`open loop at ${offeredPerSecond.toLocaleString('en-US')} req/s`);
      result = await drive(peer, calls, { ...timing, connections: load.connections, shape: { kind: 'open', ratePerSecond: offeredPerSecond } }, options, events);
    } else {
      rssBeforeBytes = processRssBytes(peer.pid);
      result = await drive(peer, calls, { ...timing, connections: load.connections, shape: { kind: 'idle' } }, options, events);
    }
    await workCounted;
    return {
      scenario: scenario.name,
      server,
      connections: result.connections,
      depth: result.depth,
      seconds: result.seconds,
      requests: result.requests,
      requestsPerSecond: result.requestsPerSecond,
      errors: result.errors,
      lost: result.lost,
      fatal: result.fatal,
      latencyUs: result.latency,
      curve: result.curve,
      perClass: result.perTemplate,
      serverCpuPercent: serverCpu.percentOfOneCore,
      serverWork: work.result,
      generatorCpuPercent: result.generatorCpuPercent,
      maxSendLagUs: result.maxSendLagUs,
      otherCpuPercent: Math.max(0, machineCpu.percentOfOneCore - serverCpu.percentOfOneCore - result.generatorCpuPercent),
      capacityPerSecond,
      offeredPerSecond,
      rssBeforeBytes,
      rssBytes,
      rssPerConnectionBytes:
        rssBytes !== undefined && rssBeforeBytes !== undefined ? (rssBytes - rssBeforeBytes) / load.connections : undefined,
      transport: peer.transport,
      workerRequests: await peer.close(),
    };
  } catch (error) {
    await peer.close().catch(() => undefined);
    throw error;
  }
}
