#!/usr/bin/env node
/**
 * The kmux demo: the example Catalog service on a kmux Server with N worker threads, driven
 * by the native load generator (its own process) with a mix of the cheap `lookup` and the
 * CPU-heavy `hashRounds` on the same connections. A short closed-loop probe finds the
 * server's capacity; then the mix is offered at a fixed rate below it (open loop, latency
 * from each request's intended send time), as a service runs in production. Prints the
 * transport and why, latency per method, errors, each worker's share, and what to read in
 * them. Exits non-zero if a request was lost or misrouted.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { describeTransport, Server, type ServerStatsSnapshot, type TransportReport } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { CpuWindow } from './cpu/process-cpu.js';
import type { LoadResult } from './load/load-generator.js';
import { runNativeLoad, type LoadShape } from './load/native-load.js';
import { encodeThriftCall } from './load/request-template.js';
import { progressLine } from './report/progress.js';
import { textTable } from './report/table.js';
import { calibrateHashRounds } from './service/calibrate.js';
import { catalogService } from './service/catalog.js';
import { CATALOG_HANDLER_MODULE, CATALOG_SERVICE_MODULE } from './service/catalog-modules.js';

const HEAVY_CALL_MICROS = 1000;
const CONNECTIONS = 4;
const DEPTH = 8;
const WARMUP_SECONDS = 1;
const PROBE_SECONDS = 2;
/** The offered rate, as a share of the probed capacity: loaded, not saturated. */
const LOAD_FRACTION = 0.5;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '2' },
      duration: { type: 'string', default: '10' },
    },
  });
  const workers = Number(values.workers);
  const durationSeconds = Number(values.duration);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers needs a positive integer, got ${values.workers}`);
  if (!(durationSeconds > 0)) throw new Error(`--duration needs a positive number, got ${values.duration}`);

  const hashInput = randomBytes(1024);
  const rounds = calibrateHashRounds(hashInput, HEAVY_CALL_MICROS);
  // Nine cheap lookups to one ~1 ms hash: the heavy calls must not hold up the cheap ones.
  const templates = [
    encodeThriftCall(catalogService.Client, { method: 'lookup', args: [{ sku: 'kb-001' }], weight: 9 }),
    encodeThriftCall(catalogService.Client, { method: 'hashRounds', args: [hashInput, rounds], weight: 1 }),
  ];

  const server = new Server({
    codec: thriftCodec({ service: CATALOG_SERVICE_MODULE, handler: CATALOG_HANDLER_MODULE, protocol: 'binary' }),
    workers,
    logger: { info: () => undefined, warn: console.warn, error: console.error },
  });
  const { host, port } = await server.listen({ host: '127.0.0.1', port: 0 });
  console.log(`kmux demo: Catalog service on ${host}:${port}, ${workers} worker threads`);
  printTransport(server.transport!);
  console.log(`load: ${CONNECTIONS} connections × ${DEPTH} in flight, lookup : hashRounds(${rounds} rounds ≈ ${HEAVY_CALL_MICROS} µs) = 9 : 1\n`);

  const serverCpu = CpuWindow.ofProcess(process.pid);
  const drive = async (label: string, shape: LoadShape, seconds: number): Promise<LoadResult> => {
    const progress = progressLine(label, WARMUP_SECONDS, seconds);
    try {
      const spec = { host, port, protocol: 'thrift' as const, connections: CONNECTIONS, shape, warmupSeconds: WARMUP_SECONDS };
      return await runNativeLoad(
        { ...spec, durationSeconds: seconds, drainTimeoutMs: 5000, templates },
        { onProgress: (p) => progress.update(p), onMeasureStart: () => serverCpu.start(), onMeasureEnd: () => serverCpu.stop() },
      );
    } finally {
      progress.done('finished');
    }
  };
  const probe = await drive('  capacity probe (closed loop)', { kind: 'closed', depth: DEPTH }, PROBE_SECONDS);
  const rate = Math.max(1, Math.round(probe.requestsPerSecond * LOAD_FRACTION));
  const result = probe.fatal === null ? await drive(`  open loop at ${n(rate)} req/s`, { kind: 'open', ratePerSecond: rate }, durationSeconds) : probe;
  const stats = server.stats();
  await server.close();

  console.log(`\ncapacity ${n(probe.requestsPerSecond)} req/s (closed loop, ${CONNECTIONS} × ${DEPTH} in flight); measured at ${n(rate)} req/s, ${LOAD_FRACTION * 100} % of it:`);
  printResult(result, serverCpu.percentOfOneCore);
  const shares = printWorkerShares(stats);
  explain(result, shares);
  if (result.fatal) console.error(`\nFAILED: ${result.fatal}`);
  if (result.lost > 0) console.error(`\nFAILED: ${result.lost} requests were never answered`);
  return result.fatal === null && result.lost === 0 ? 0 : 1;
}

const n = (v: number): string => Math.round(v).toLocaleString('en-US');

/** What to read in the tables, with this run's numbers. */
function explain(result: LoadResult, shares: readonly number[]): void {
  const latency = (label: string) => result.perTemplate.find((t) => t.label.startsWith(label))?.latency;
  const cheap = latency('lookup');
  const heavy = latency('hashRounds');
  if (!cheap || !heavy) return;
  const verdict =
    cheap.p50 < heavy.p50
      ? `here a typical lookup took ${(heavy.p50 / cheap.p50).toFixed(1)}× less time than a hashRounds.`
      : 'here it did not: the machine was saturated or busy with other work (compare the capacity above with an idle run).';
  console.log(
    [
      '',
      'What to look at:',
      `- lookup (cheap) beside hashRounds (~${HEAVY_CALL_MICROS} µs of CPU) on the same connections: lookup p50 ${n(cheap.p50)} µs,`,
      `  p99 ${n(cheap.p99)} µs; hashRounds p50 ${n(heavy.p50)} µs, p99 ${n(heavy.p99)} µs. kmux gives a cheap call to a free`,
      '  worker instead of queueing it behind a hashRounds, so its typical latency should stay below one hashRounds,',
      `  where a single-threaded server makes every lookup behind a hashRounds wait for it; ${verdict}`,
      '  The p99s are the calls that came while every worker was busy: on a small machine the OS scheduler',
      '  decides those (docs/tail-latency.md).',
      `- the per-worker share (${shares.map((share) => `${share.toFixed(0)} %`).join(' / ')}): near even means every worker thread did its part.`,
    ].join('\n'),
  );
}

function printTransport(report: TransportReport): void {
  console.log(`transport: ${report.name} (requested: ${report.requested})`);
  for (const [name, why] of Object.entries(report.notTaken)) console.log(`  not ${name}: ${why}`);
  if (Object.keys(report.notTaken).length === 0) console.log(`  (${describeTransport(report)})`);
}

function printResult(result: LoadResult, serverCpuPercent: number): void {
  console.log(
    `${n(result.requestsPerSecond)} req/s over ${result.seconds.toFixed(1)} s, errors ${result.errors}, ` +
      `lost ${result.lost}; CPU: server ${n(serverCpuPercent)}%, generator ${n(result.generatorCpuPercent)}% of one core\n`,
  );
  const rows = [
    ...result.perTemplate.map((t) => ({ name: t.label, requests: t.requests, errors: t.errors, latency: t.latency })),
    { name: 'all', requests: result.requests, errors: result.errors, latency: result.latency },
  ].map((r) => [r.name, n(r.requests), n(r.errors), n(r.latency.p50), n(r.latency.p99), n(r.latency.p999), n(r.latency.max)]);
  console.log(textTable(['method', 'requests', 'errors', 'p50 µs', 'p99 µs', 'p99.9 µs', 'max µs'], rows));
}

/** Prints each worker's requests (the whole run) and returns their shares in percent. */
function printWorkerShares(stats: ServerStatsSnapshot): number[] {
  const total = stats.workers.reduce((sum, w) => sum + w.completed, 0);
  console.log('\nrequests per worker thread (whole run: probe, warm-ups and measurement):');
  return stats.workers.map((w) => {
    const share = total === 0 ? 0 : (w.completed / total) * 100;
    console.log(`  worker ${w.slot} (thread ${w.threadId}): ${w.completed.toLocaleString('en-US')} (${share.toFixed(1)}%)`);
    return share;
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
