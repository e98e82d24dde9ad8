#!/usr/bin/env node
/**
 * The kmux demo: the example Catalog service on a kmux Server with N worker threads,
 * driven for a few seconds by the native load generator (its own process) with a mix of the
 * cheap `lookup` and the CPU-heavy `hashRounds`. Prints the transport and why, throughput,
 * latency per method, errors and each worker's share. Exits non-zero if a request was
 * lost or misrouted.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { describeTransport, Server, type ServerStatsSnapshot, type TransportReport } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { CpuWindow } from './cpu/process-cpu.js';
import type { LoadResult } from './load/load-generator.js';
import { runNativeLoad } from './load/native-load.js';
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
  const progress = progressLine('  load', WARMUP_SECONDS, durationSeconds);
  let result: LoadResult;
  try {
    result = await runNativeLoad(
      {
        host,
        port,
        protocol: 'thrift',
        connections: CONNECTIONS,
        shape: { kind: 'closed', depth: DEPTH },
        warmupSeconds: WARMUP_SECONDS,
        durationSeconds,
        drainTimeoutMs: 5000,
        templates,
      },
      { onProgress: (p) => progress.update(p), onMeasureStart: () => serverCpu.start(), onMeasureEnd: () => serverCpu.stop() },
    );
  } finally {
    progress.done('finished');
  }
  const stats = server.stats();
  await server.close();

  printResult(result, serverCpu.percentOfOneCore);
  printWorkerShares(stats);
  if (result.fatal) console.error(`\nFAILED: ${result.fatal}`);
  if (result.lost > 0) console.error(`\nFAILED: ${result.lost} requests were never answered`);
  return result.fatal === null && result.lost === 0 ? 0 : 1;
}

function printTransport(report: TransportReport): void {
  console.log(`transport: ${report.name} (requested: ${report.requested})`);
  for (const [name, why] of Object.entries(report.notTaken)) console.log(`  not ${name}: ${why}`);
  if (Object.keys(report.notTaken).length === 0) console.log(`  (${describeTransport(report)})`);
}

function printResult(result: LoadResult, serverCpuPercent: number): void {
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  console.log(
    `\n${n(result.requestsPerSecond)} req/s over ${result.seconds.toFixed(1)} s, errors ${result.errors}, ` +
      `lost ${result.lost}; CPU: server ${n(serverCpuPercent)}%, generator ${n(result.generatorCpuPercent)}% of one core\n`,
  );
  const rows = [
    ...result.perTemplate.map((t) => ({ name: t.label, requests: t.requests, errors: t.errors, latency: t.latency })),
    { name: 'all', requests: result.requests, errors: result.errors, latency: result.latency },
  ].map((r) => [r.name, n(r.requests), n(r.errors), n(r.latency.p50), n(r.latency.p99), n(r.latency.p999), n(r.latency.max)]);
  console.log(textTable(['method', 'requests', 'errors', 'p50 µs', 'p99 µs', 'p99.9 µs', 'max µs'], rows));
}

function printWorkerShares(stats: ServerStatsSnapshot): void {
  const total = stats.workers.reduce((sum, w) => sum + w.completed, 0);
  console.log('\nrequests per worker thread (whole run, warm-up included):');
  for (const w of stats.workers) {
    const share = total === 0 ? 0 : (w.completed / total) * 100;
    console.log(`  worker ${w.slot} (thread ${w.threadId}): ${w.completed.toLocaleString('en-US')} (${share.toFixed(1)}%)`);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
