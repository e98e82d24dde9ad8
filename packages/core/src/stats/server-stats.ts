import type { SockmapEntries } from '@kmux/native';
import type { ThreadSliceOutcome } from '../scheduler/thread-slice.js';
import { Histogram, type Percentiles } from './histogram.js';
import type { KcmProcStats } from './kcm-proc.js';
import { MethodSeries } from './method-series.js';
import type { Outcome } from './outcome.js';
import type { TlsStatsSnapshot } from '../tls/server-tls.js';
import type { TlsStat } from '../tls/tls-stat.js';
import { MethodTally, WorkerTally, type TallyCounts } from './worker-tally.js';

interface MethodCounters {
  calls: number;
  exceptions: number;
  failures: number;
  readonly latencyUs: Histogram;
}

/** A kernel-transport worker's tally of one method, and the counters here it adds to. */
interface WorkerMethod {
  readonly counters: MethodCounters;
  readonly tally: MethodTally;
}

interface WorkerCounters {
  threadId: number;
  live: boolean;
  dispatched: number;
  completed: number;
  inFlight: number;
  restarts: number;
  threadSlice: ThreadSliceOutcome | null;
  readonly latencyUs: Histogram;
}

export interface MethodStats {
  readonly calls: number;
  /** Answered with an exception the service declares: counted here, not as failures. */
  readonly exceptions: number;
  readonly failures: number;
  readonly latencyUs: Percentiles;
}

export interface WorkerStats {
  readonly slot: number;
  readonly threadId: number;
  readonly live: boolean;
  readonly dispatched: number;
  readonly completed: number;
  readonly inFlight: number;
  readonly restarts: number;
  /** Whether the worker got the EEVDF time slice it asked for (threadSliceUs), and why not; null when not asked. */
  readonly threadSlice: ThreadSliceOutcome | null;
  readonly latencyUs: Percentiles;
}

/** The EEVDF time slice the server's threads asked for (threadSliceUs; null: not asked), and what the main thread got. */
export interface ThreadSliceStats {
  readonly requestedUs: number | null;
  readonly mainThread: ThreadSliceOutcome | null;
}

export interface ServerStatsSnapshot {
  readonly threadSlice: ThreadSliceStats;
  /** `aged`: ended gracefully at maxConnectionAgeMs. */
  readonly connections: { readonly open: number; readonly accepted: number; readonly rejected: number; readonly aged: number };
  readonly requests: {
    readonly received: number;
    readonly inFlight: number;
    /** Requests waiting in the main thread for a worker with room. */
    readonly queued: number;
    /** Replies that arrived after their request had already been answered or its connection closed. */
    readonly dropped: number;
    readonly outcomes: Readonly<Record<string, number>>;
  };
  /** Connection-level errors: frame_too_large, protocol, idle timeouts, socket errors. */
  readonly connectionErrors: Readonly<Record<string, number>>;
  readonly latencyUs: Percentiles;
  readonly methods: Readonly<Record<string, MethodStats>>;
  readonly workers: readonly WorkerStats[];
  /**
   * Kernel counters, each for the whole network namespace: `kcm` is /proc/net/kcm_stats (KCM
   * transport), `tls` is /proc/net/tls_stat (a TLS server on a kernel with kTLS); `sockmap` is
   * what this server's BPF maps hold (sockmap transport), asked of the kernel.
   */
  readonly kernel?: {
    readonly kcm?: KcmProcStats;
    readonly tls?: TlsStat;
    readonly sockmap?: SockmapEntries;
    /** Connections a kernel transport served in user space: the kernel refused them (sockmap: closed before the accept). */
    readonly userspaceFallbacks?: number;
    /** KCM connections whose transmit the kernel stopped at the peer's FIN and kmux restarted (their replies then went out). */
    readonly transmitRestarts?: number;
    /** KCM connections whose stopped transmit could not be restarted (the socket was closed too): closed at once, `replies_unsent`. */
    readonly failedTransmitRestarts?: number;
  };
  /** The user-space transport's byte budget (maxBufferedBytes): bytes held now and at most, requests shed and reads paused for it. */
  readonly buffers?: BufferStats;
  /** A TLS server: whether kTLS is on and why, handoffs, user-space fallbacks and failures by reason, how kTLS connections ended. */
  readonly tls?: TlsStatsSnapshot;
}

export interface BufferStats {
  readonly bytes: number;
  readonly peak: number;
  readonly limit: number;
  readonly shed: number;
  readonly pauses: number;
  readonly pausedConnections: number;
}

function pick({ bytes, peak, limit, shed, pauses, pausedConnections }: BufferStats): BufferStats {
  return { bytes, peak, limit, shed, pauses, pausedConnections };
}

/** Counters and latency histograms the server updates on its hot path. */
export class ServerStats {
  openConnections = 0;
  acceptedConnections = 0;
  rejectedConnections = 0;
  agedConnections = 0;
  received = 0;
  dropped = 0;
  /** Requests answered `shutting_down` because they still ran at close()'s drain deadline (user space). */
  cutOffAtClose = 0;
  /** Set by the transport that keeps a byte budget. */
  buffers: BufferStats | null = null;
  /** Set by the server as it starts. */
  threadSlice: ThreadSliceStats = { requestedUs: null, mainThread: null };
  private readonly outcomes = new Map<Outcome, number>();
  private readonly connectionErrors = new Map<string, number>();
  private readonly latencyUs = new Histogram();
  private readonly methods = new Map<string, MethodCounters>();
  /** Which series a method name is counted in (method-series.ts). */
  readonly series = new MethodSeries();
  private readonly workers: WorkerCounters[];
  /** Each slot's current worker's own counts, and its method tallies (kernel transports; see worker-tally.ts). */
  private readonly tallies: WorkerTally[];
  private readonly workerMethods: WorkerMethod[][];

  constructor(workerCount: number) {
    this.workers = Array.from({ length: workerCount }, () => ({
      threadId: -1,
      live: false,
      dispatched: 0,
      completed: 0,
      inFlight: 0,
      restarts: 0,
      threadSlice: null,
      latencyUs: new Histogram(),
    }));
    this.tallies = Array.from({ length: workerCount }, () => new WorkerTally());
    this.workerMethods = Array.from({ length: workerCount }, () => []);
  }

  /** The shared memory the worker now in `slot` counts its requests in, on a kernel transport. */
  workerTally(slot: number): SharedArrayBuffer {
    return this.tallies[slot]!.buffer;
  }

  /** The worker in `slot` counts `method` in `buffer` (a MethodTally's), from now on. */
  workerMethod(slot: number, method: string, buffer: SharedArrayBuffer): void {
    this.workerMethods[slot]!.push({ counters: this.methodCounters(method), tally: new MethodTally(buffer) });
  }

  workerReady(slot: number, threadId: number, threadSlice: ThreadSliceOutcome | null): void {
    const worker = this.workers[slot]!;
    worker.threadSlice = threadSlice;
    if (worker.threadId !== -1) worker.restarts++;
    worker.threadId = threadId;
    worker.live = true;
  }

  workerExited(slot: number): void {
    const worker = this.workers[slot]!;
    worker.live = false;
    worker.inFlight = 0;
    // Its counts are final: keep them, and give the slot's next worker a fresh tally.
    this.addTally(slot, this.tallies[slot]!.read());
    this.tallies[slot] = new WorkerTally();
    for (const { counters, tally } of this.workerMethods[slot]!) addMethod(counters, worker.latencyUs, this.latencyUs, tally);
    this.workerMethods[slot] = [];
  }

  private addTally(slot: number, counts: TallyCounts): void {
    this.received += counts.received;
    this.dropped += counts.dropped;
    for (const [outcome, n] of counts.outcomes) this.countOutcome(outcome, n);
    const worker = this.workers[slot]!;
    worker.dispatched += counts.started;
    worker.completed += counts.completed;
  }

  dispatched(slot: number): void {
    const worker = this.workers[slot]!;
    worker.dispatched++;
    worker.inFlight++;
  }

  /** A worker finished one request; `latencyUs` is null when nobody was waiting for it any more. */
  workerDone(slot: number, latencyUs: number | null): void {
    const worker = this.workers[slot]!;
    if (worker.inFlight > 0) worker.inFlight--;
    worker.completed++;
    if (latencyUs !== null) worker.latencyUs.record(latencyUs);
  }

  /** One request ended with `outcome` after `latencyUs`. */
  requestDone(method: string, outcome: Outcome, latencyUs: number): void {
    this.countOutcome(outcome, 1);
    const counters = this.methodCounters(method);
    counters.calls++;
    if (outcome === 'exception') counters.exceptions++;
    else if (outcome !== 'ok') counters.failures++;
    counters.latencyUs.record(latencyUs);
    this.latencyUs.record(latencyUs);
  }

  /** Requests lost without an answer, e.g. with a worker that died on a kernel transport. */
  requestsLost(outcome: Outcome, count: number): void {
    if (count > 0) this.countOutcome(outcome, count);
  }

  private countOutcome(outcome: Outcome, n: number): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + n);
  }

  private methodCounters(method: string): MethodCounters {
    const series = this.series.name(method, this.methods);
    let counters = this.methods.get(series);
    if (!counters) {
      counters = { calls: 0, exceptions: 0, failures: 0, latencyUs: new Histogram() };
      this.methods.set(series, counters);
    }
    return counters;
  }

  connectionError(kind: string): void {
    this.connectionErrors.set(kind, (this.connectionErrors.get(kind) ?? 0) + 1);
  }

  snapshot(inFlight: number, queued: number, kernel?: ServerStatsSnapshot['kernel']): ServerStatsSnapshot {
    const { buffers } = this;
    // Live workers' tallies: read now, not merged until their worker exits (their method
    // tallies are added to copies of the histograms here).
    const live = this.tallies.map((tally) => tally.read());
    const latencyUs = copy(this.latencyUs);
    const methods = new Map([...this.methods.values()].map((m) => [m, { ...m, latencyUs: copy(m.latencyUs) }]));
    const workerLatencyUs = this.workers.map((w) => copy(w.latencyUs));
    this.workerMethods.forEach((list, slot) => {
      for (const { counters, tally } of list) addMethod(methods.get(counters)!, workerLatencyUs[slot]!, latencyUs, tally);
    });
    const sum = (pick: (counts: TallyCounts) => number): number => live.reduce((n, counts) => n + pick(counts), 0);
    const outcomes = new Map(this.outcomes);
    for (const counts of live) for (const [outcome, n] of counts.outcomes) outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + n);
    return {
      threadSlice: this.threadSlice,
      ...(kernel ? { kernel } : {}),
      ...(buffers ? { buffers: pick(buffers) } : {}),
      connections: {
        open: this.openConnections,
        accepted: this.acceptedConnections,
        rejected: this.rejectedConnections,
        aged: this.agedConnections,
      },
      requests: {
        received: this.received + sum((counts) => counts.received),
        inFlight,
        queued,
        dropped: this.dropped + sum((counts) => counts.dropped),
        outcomes: Object.fromEntries(outcomes),
      },
      connectionErrors: Object.fromEntries(this.connectionErrors),
      latencyUs: latencyUs.summary(),
      methods: Object.fromEntries(
        [...this.methods].map(([name, counters]) => {
          const m = methods.get(counters)!;
          return [name, { calls: m.calls, exceptions: m.exceptions, failures: m.failures, latencyUs: m.latencyUs.summary() }];
        }),
      ),
      workers: this.workers.map((w, slot) => ({
        slot,
        threadId: w.threadId,
        live: w.live,
        dispatched: w.dispatched + live[slot]!.started,
        completed: w.completed + live[slot]!.completed,
        inFlight: w.inFlight + live[slot]!.started - live[slot]!.completed,
        restarts: w.restarts,
        threadSlice: w.threadSlice,
        latencyUs: workerLatencyUs[slot]!.summary(),
      })),
    };
  }
}

/** Adds a worker's method tally to its method's, its worker's and the server's counts. */
function addMethod(counters: MethodCounters, workerLatencyUs: Histogram, latencyUs: Histogram, tally: MethodTally): void {
  // On a kernel transport the worker's own latency is the request's: it read the frame.
  const data = tally.latencyUs.toData();
  counters.calls += data.total;
  counters.exceptions += tally.exceptions;
  counters.failures += tally.failures;
  counters.latencyUs.mergeData(data);
  workerLatencyUs.mergeData(data);
  latencyUs.mergeData(data);
}

function copy(histogram: Histogram): Histogram {
  const out = new Histogram();
  out.merge(histogram);
  return out;
}
