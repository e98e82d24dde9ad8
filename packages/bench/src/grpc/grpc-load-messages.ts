import type { Histogram } from '@kmux/core';
import type { GrpcMethod } from './catalog-grpc.js';

/** A histogram as plain data (@kmux/core's Histogram.toData), to send between processes. */
export type HistogramData = ReturnType<Histogram['toData']>;

/** One kind of call in a gRPC load, like a RequestTemplate of the Thrift generator. */
export interface GrpcCall {
  readonly method: GrpcMethod;
  /** The request message as a plain object (bytes as Buffers). */
  readonly request: Readonly<Record<string, unknown>>;
  /** Relative share of sends in a mix (a positive integer); default 1. */
  readonly weight?: number;
  /** Label for reports; default the method. */
  readonly label?: string;
}

/** What one client process drives: its share of the connections. */
export interface GrpcShare {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  /** Closed loop: calls in flight per connection. */
  readonly depth: number;
  /** Open loop, when set: this share's calls per second, `depth` unused. */
  readonly ratePerSecond?: number;
  readonly drainTimeoutMs: number;
  readonly calls: readonly GrpcCall[];
}

/** Parent → client process. `run` starts the load, `measure` opens the window, `stop` closes it. */
export type GrpcDriverCommand = { type: 'start'; share: GrpcShare } | { type: 'run' } | { type: 'measure' } | { type: 'stop' };

export interface GrpcShareResult {
  readonly requests: number;
  readonly errors: number;
  readonly latency: HistogramData;
  readonly perCall: readonly { readonly requests: number; readonly errors: number; readonly latency: HistogramData }[];
  readonly lost: number;
  readonly cpuMicros: number;
  readonly maxSendLagUs: number;
}

/** Client process → parent. `count` is cumulative over the whole run, for progress. */
export type GrpcDriverReport =
  | { type: 'ready' }
  | { type: 'count'; completed: number }
  | { type: 'fatal'; message: string }
  | { type: 'result'; result: GrpcShareResult }
  | { type: 'failed'; message: string };
