import { randomBytes } from 'node:crypto';
import type { CallSpec } from './load/request-template.js';
import type { PeerName } from './peers/spawn-peer.js';

/**
 * How a scenario loads a server.
 * closed: C connections × D requests in flight, every reply sending the next (throughput).
 * fixed-rate: requests on a fixed schedule at `ratePerSecond`, the same for every server
 *   (latency at one offered load: the fair comparison of tails).
 * capacity-fraction: requests on a fixed schedule at `loadFraction` of the capacity a short
 *   closed-loop probe (C×D of `probe`) just measured on the same server, so every server
 *   gets its own rate.
 * idle: connections held open without traffic (memory per connection).
 */
export type ScenarioLoad =
  | { readonly kind: 'closed'; readonly connections: number; readonly depth: number }
  | { readonly kind: 'fixed-rate'; readonly connections: number; readonly ratePerSecond: number }
  | {
      readonly kind: 'capacity-fraction';
      readonly connections: number;
      readonly loadFraction: number;
      readonly probe: { readonly connections: number; readonly depth: number };
    }
  | { readonly kind: 'idle'; readonly connections: number };

/**
 * What a scenario ranks servers by: throughput, the p99 of the calls labelled `focus`, or
 * the server's resident memory per connection. Every ratio is oriented so > 1 favours kmux.
 */
export type ScenarioMetric = 'throughput' | 'focus-p99' | 'rss-per-connection';

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly load: ScenarioLoad;
  readonly calls: readonly CallSpec[];
  readonly metric: ScenarioMetric;
  /** The call label the scenario is about (the fast calls of the mixed scenario). */
  readonly focus?: string;
  /** kmux must be at least this much better than these peers on the metric (the bar). */
  readonly targets: Readonly<Partial<Record<PeerName, number>>>;
}

/** Size of the data hashRounds chains over. */
export const HASH_INPUT_BYTES = 1024;
/** CPU cost of one call in the CPU-heavy scenario: what `rounds` is calibrated to. */
export const CPU_CALL_MICROS = 1000;
const FAST_CALL_MICROS = 50;
const SLOW_CALL_MICROS = 5000;
/** The one rate every server is offered in the mixed scenarios (DESIGN.md's tail-latency runs). */
export const MIXED_RATE_PER_SECOND = 1000;
const IDLE_CONNECTIONS = 10_000;

/** The methods a scenario calls; the echo-only C server can run scenarios that call only echo. */
export function callsOnlyEcho(scenario: Scenario): boolean {
  return scenario.calls.every((call) => call.method === 'echo');
}

/** The protobuf peers' catalog.proto mirrors only these of the Thrift IDL's methods. */
export function callsOnlyProtobufMethods(scenario: Scenario): boolean {
  return scenario.calls.every((call) => call.method === 'echo' || call.method === 'hashRounds');
}

/**
 * Every scenario; `rounds` makes one hashRounds call cost CPU_CALL_MICROS (see
 * calibrateHashRounds; the cost is linear in rounds). Closed-loop C×D saturates every
 * server: the CPU scenario needs only a few requests queued per worker, echo needs deep
 * pipelines so that per-request costs, not round trips, bound throughput.
 */
export function benchScenarios(rounds: number, idleConnections = IDLE_CONNECTIONS, mixedRate = MIXED_RATE_PER_SECOND): Scenario[] {
  const hashInput = randomBytes(HASH_INPUT_BYTES);
  const roundsFor = (micros: number) => Math.max(1, Math.round((rounds * micros) / CPU_CALL_MICROS));
  const echo = (bytes: number): CallSpec => ({ method: 'echo', args: [randomBytes(bytes)] });
  const hash = (micros: number, label: string, weight = 1): CallSpec => ({
    method: 'hashRounds',
    args: [hashInput, roundsFor(micros)],
    label,
    weight,
  });
  const beatStock = { stock: 1.0 };
  // Issue 12: fast-call p99 ≤ 0.3× stock's and ≤ 0.6× piscina's (advantage = peer p99 / kmux p99).
  const mixedTargets = { stock: 1 / 0.3, piscina: 1 / 0.6 };
  return [
    {
      name: 'echo-64B',
      description: 'echo of 64 random bytes: per-request overhead',
      load: { kind: 'closed', connections: 4, depth: 16 },
      calls: [echo(64)],
      metric: 'throughput',
      targets: beatStock,
    },
    {
      name: 'echo-16KiB',
      description: 'echo of 16 KiB: copying and framing larger messages',
      load: { kind: 'closed', connections: 4, depth: 4 },
      calls: [echo(16 * 1024)],
      metric: 'throughput',
      targets: beatStock,
    },
    {
      name: 'cpu-1ms',
      description: `hashRounds: ${roundsFor(CPU_CALL_MICROS)} SHA-256 rounds over ${HASH_INPUT_BYTES} B ≈ ${CPU_CALL_MICROS} µs of CPU`,
      load: { kind: 'closed', connections: 4, depth: 4 },
      calls: [hash(CPU_CALL_MICROS, 'hashRounds')],
      metric: 'throughput',
      targets: { stock: 1.8, piscina: 1.0, grpc: 1.0 },
    },
    {
      name: 'mixed-same-method',
      description:
        `19 fast (≈${FAST_CALL_MICROS} µs) : 1 slow (≈${SLOW_CALL_MICROS / 1000} ms) calls of the same method (hashRounds, ` +
        `different rounds), ${mixedRate} req/s open loop over 2 connections for every server: the fast calls' p99`,
      load: { kind: 'fixed-rate', connections: 2, ratePerSecond: mixedRate },
      calls: [hash(FAST_CALL_MICROS, 'fast', 19), hash(SLOW_CALL_MICROS, 'slow')],
      metric: 'focus-p99',
      focus: 'fast',
      targets: mixedTargets,
    },
    {
      name: 'mixed-methods',
      description:
        `19 fast echo(1 KiB) : 1 slow hashRounds (≈${SLOW_CALL_MICROS / 1000} ms), ` +
        `${mixedRate} req/s open loop over 2 connections for every server: the fast calls' p99`,
      load: { kind: 'fixed-rate', connections: 2, ratePerSecond: mixedRate },
      calls: [{ ...echo(1024), label: 'fast', weight: 19 }, hash(SLOW_CALL_MICROS, 'slow')],
      metric: 'focus-p99',
      focus: 'fast',
      targets: mixedTargets,
    },
    {
      name: 'mixed-blocking-slow',
      description:
        `the mixed-same-method load with slow calls that block their thread without CPU: 19 fast hashRounds (≈${FAST_CALL_MICROS} µs) : ` +
        `1 blockFor(${SLOW_CALL_MICROS / 1000} ms, Atomics.wait), ${mixedRate} req/s open loop over 2 connections: ` +
        'dispatch alone, without slow calls competing for the cores',
      load: { kind: 'fixed-rate', connections: 2, ratePerSecond: mixedRate },
      calls: [hash(FAST_CALL_MICROS, 'fast', 19), { method: 'blockFor', args: [SLOW_CALL_MICROS], label: 'slow', weight: 1 }],
      metric: 'focus-p99',
      focus: 'fast',
      targets: {},
    },
    {
      name: 'mixed-at-60pct-of-own-capacity',
      description:
        `the mixed-same-method calls, open loop at 60% of the capacity a closed-loop probe measured on each server ` +
        '(so each server gets a different rate: compare tails with the fixed-rate scenarios)',
      load: { kind: 'capacity-fraction', connections: 2, loadFraction: 0.6, probe: { connections: 2, depth: 8 } },
      calls: [hash(FAST_CALL_MICROS, 'fast', 19), hash(SLOW_CALL_MICROS, 'slow')],
      metric: 'focus-p99',
      focus: 'fast',
      targets: {},
    },
    {
      name: 'idle',
      description: `${idleConnections.toLocaleString('en-US')} idle connections, then one echo on each: server memory per connection`,
      load: { kind: 'idle', connections: idleConnections },
      calls: [echo(64)],
      metric: 'rss-per-connection',
      targets: beatStock,
    },
  ];
}
