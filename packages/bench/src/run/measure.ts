import { CpuWindow } from '../cpu/process-cpu.js';
import type { Percentiles as LatencySummary } from '@kmux/core';
import type { LoadProgress, LoadResult } from '../load/load-generator.js';
import { encodeCall } from '../load/request-template.js';
import { runLoadInChild } from '../load/spawn-generator.js';
import { startPeer, type PeerName } from '../peers/spawn-peer.js';
import type { Scenario } from '../scenarios.js';
import { catalogService } from '../service/catalog.js';

export interface MeasureOptions {
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** Worker threads for servers that have them. */
  readonly workers: number;
  readonly transport?: string;
  readonly cpuProfileDir?: string;
  readonly onProgress?: (progress: LoadProgress) => void;
}

/** One row of the results: one server under one scenario. */
export interface Measurement
  extends Pick<
    LoadResult,
    'connections' | 'depth' | 'seconds' | 'requests' | 'requestsPerSecond' | 'errors' | 'lost' | 'fatal' | 'generatorCpuPercent'
  > {
  readonly scenario: string;
  readonly server: PeerName;
  readonly latencyUs: LatencySummary;
  /** CPU of the whole server process (all threads), percent of one core. */
  readonly serverCpuPercent: number;
  /**
   * CPU the rest of the machine used meanwhile (other processes, the bench itself), percent
   * of one core. More than a few percent means the numbers are not the servers' alone.
   */
  readonly otherCpuPercent: number;
  readonly transport: string | null;
  readonly workerRequests: number[] | null;
}

/** Starts `server` in its own process, drives it with the scenario from another, and stops it. */
export async function measure(scenario: Scenario, server: PeerName, options: MeasureOptions): Promise<Measurement> {
  const templates = scenario.calls.map((call) => encodeCall(catalogService.Client, call));
  const peer = await startPeer(server, { workers: options.workers, transport: options.transport, cpuProfileDir: options.cpuProfileDir });
  const serverCpu = CpuWindow.ofProcess(peer.pid);
  const machineCpu = CpuWindow.ofMachine();
  try {
    const result = await runLoadInChild(
      {
        host: '127.0.0.1',
        port: peer.port,
        connections: scenario.connections,
        depth: scenario.depth,
        warmupSeconds: options.warmupSeconds,
        durationSeconds: options.durationSeconds,
        drainTimeoutMs: 5000,
        templates,
      },
      {
        onProgress: options.onProgress,
        onMeasureStart: () => {
          serverCpu.start();
          machineCpu.start();
        },
        onMeasureEnd: () => {
          serverCpu.stop();
          machineCpu.stop();
        },
      },
    );
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
      serverCpuPercent: serverCpu.percentOfOneCore,
      generatorCpuPercent: result.generatorCpuPercent,
      otherCpuPercent: Math.max(0, machineCpu.percentOfOneCore - serverCpu.percentOfOneCore - result.generatorCpuPercent),
      transport: peer.transport,
      workerRequests: await peer.close(),
    };
  } catch (error) {
    await peer.close().catch(() => undefined);
    throw error;
  }
}
