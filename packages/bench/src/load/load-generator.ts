/**
 * What a load run reports, whichever generator drove it: the native one (native-load.ts)
 * for length-prefixed Thrift and kmux protobuf, the grpc-js one (grpc/grpc-load.ts) for gRPC.
 */
import type { Percentiles as LatencySummary } from '@kmux/core';

export interface LoadProgress {
  /** `connect`: opening connections (recentRate counts connections); `drain`: waiting for the last replies. */
  readonly phase: 'connect' | 'warmup' | 'measure' | 'drain';
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

/** [percent, µs] points from 0 to 100, for latency-percentile charts. */
export type PercentileCurve = readonly (readonly [number, number])[];

export interface TemplateResult {
  readonly label: string;
  readonly requests: number;
  readonly errors: number;
  readonly latency: LatencySummary;
  readonly curve?: PercentileCurve;
}

export interface LoadResult {
  readonly connections: number;
  /** Requests in flight per connection (closed loop); 0 for open loop and idle runs. */
  readonly depth: number;
  readonly seconds: number;
  /** Replies to the requests sent in the measured window. */
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** Replies that report a failure (Thrift EXCEPTION, a protobuf or gRPC status other than OK). */
  readonly errors: number;
  /** Requests still unanswered when the drain timeout ran out. */
  readonly lost: number;
  readonly latency: LatencySummary;
  readonly curve?: PercentileCurve;
  readonly perTemplate: readonly TemplateResult[];
  /** The generator's own CPU use in the window, in percent of one core. */
  readonly generatorCpuPercent: number;
  /** Open loop: the most a request went out after its intended time (the generator falling behind). */
  readonly maxSendLagUs?: number;
  /** Why the run was aborted (misroute, bad reply, lost connection), or null. */
  readonly fatal: string | null;
}
