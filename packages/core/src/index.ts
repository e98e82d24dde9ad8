export { Server, type ListenOptions, type CloseOptions, type CloseReport, type ServerHealth } from './server/server.js';
export { type ServerOptions, type Logger, DEFAULT_MAX_FRAME_BYTES } from './server/options.js';
export { SOCKMAP_MAX_FRAME_BYTES } from './transport/sockmap-transport.js';
export { Client, type ClientOptions, type ClientTlsState, type RequestOptions } from './client/client.js';
export { RawClient } from './client/raw-client.js';
export { activeTraceCarrier } from './telemetry/trace-carrier.js';
export { BalancedClient, type BalancedClientOptions } from './client/balanced-client.js';
export type { HostLookup, ResolvedServer, ServerAddress } from './client/server-resolver.js';
export { createChannel, type ChannelOptions, type RequestChannel } from './client/channel.js';
export { rawCodec, rawClientCodec, type RawCodecOptions } from './codec/raw.js';
export { RAW_STATUS, encodeRawRequest, decodeRawReply } from './codec/raw-wire.js';
export type {
  CallContext,
  ClientCodec,
  CreateWorkerCodec,
  MessageExtent,
  MethodNames,
  RequestHead,
  ServerCodec,
  UnframedMessages,
  WorkerCodec,
  WorkerCodecSpec,
  WorkerResult,
} from './codec/codec.js';
export * from './errors.js';
export { FrameSplitter, encodeFrame, LENGTH_PREFIX_BYTES } from './framing/frame-splitter.js';
export { UnframedSplitter } from './framing/unframed-splitter.js';
export { Histogram, type Percentiles } from './stats/histogram.js';
export type { ServerStatsSnapshot, MethodStats, WorkerStats, ThreadSliceStats } from './stats/server-stats.js';
export type { Outcome } from './stats/outcome.js';
export { UNKNOWN_METHOD } from './stats/method-series.js';
export { applyThreadSlice, type ThreadSliceOutcome } from './scheduler/thread-slice.js';
export { toPrometheus } from './stats/prometheus.js';
// kTLS: the Server and Client use it through their `ktls` option; these are for stats, probes and custom servers.
export * from './tls/index.js';
export {
  selectTransport,
  describeTransport,
  TRANSPORT_PREFERENCE,
  EXPLICIT_ONLY,
  type TransportConstraints,
  type TransportName,
  type TransportReport,
} from './transport/select.js';
export {
  probeTransports,
  type TransportProbe,
  type TransportAvailability,
  type KernelSupport,
} from './transport/probe.js';
