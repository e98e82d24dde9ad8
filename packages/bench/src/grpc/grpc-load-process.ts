/**
 * One gRPC client process of the gRPC load driver (grpc-load.ts): its share of the
 * connections, each a grpc-js client on its own channel (and so its own HTTP/2 connection).
 * Closed loop: `depth` unary calls in flight per connection, every reply sending the next.
 * Open loop: calls on a fixed schedule, spread round-robin over the connections, latency
 * counted from each call's intended send time. As in the native generator, the calls sent
 * in the measured window are the ones measured, replies after the window included.
 */
import * as grpc from '@grpc/grpc-js';
import { Histogram } from '@kmux/core';
import { mixSchedule } from '../load/request-mix.js';
import { CatalogGrpcClient } from './catalog-grpc.js';
import type { GrpcDriverCommand, GrpcDriverReport, GrpcShare, GrpcShareResult } from './grpc-load-messages.js';

/** The native generator's precision, 1/128: the two are compared. */
const PRECISION_BITS = 7;
const CONNECT_TIMEOUT_MS = 10_000;
const COUNT_INTERVAL_MS = 250;
/** Statuses that mean the connection, not the call, failed: fatal, as a lost connection is for Thrift. */
const CONNECTION_FAILURES = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.CANCELLED]);

type UnaryMethod = (request: unknown, callback: (error: grpc.ServiceError | null) => void) => void;

const send = (report: GrpcDriverReport): void => void process.send!(report);
const nowNs = (): number => Number(process.hrtime.bigint());

async function drive(share: GrpcShare): Promise<void> {
  const overall = new Histogram(PRECISION_BITS);
  const perCall = share.calls.map(() => ({ histogram: new Histogram(PRECISION_BITS), errors: 0 }));
  const schedule = mixSchedule(share.calls.map((c) => ({ label: c.label ?? c.method, weight: c.weight ?? 1 })));
  let errors = 0;
  let completed = 0;
  let outstanding = 0;
  let measuring = false;
  let stopping = false;
  let fatal = false;
  let maxSendLagNs = 0;
  let cpuStart = process.cpuUsage();

  const clients = Array.from(
    { length: share.connections },
    // A local subchannel pool per client: otherwise clients to one address share one connection.
    () => new CatalogGrpcClient(`${share.host}:${share.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
  );
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + CONNECT_TIMEOUT_MS, (error) => (error ? reject(error) : resolve()))),
    ),
  );

  /** Sends call number `position` of the mix on `client`; `then` runs after its reply. */
  const issue = (client: grpc.Client, position: number, intendedNs: number, then?: () => void): void => {
    const index = schedule[position % schedule.length]!;
    const call = share.calls[index]!;
    const measured = measuring;
    outstanding++;
    (client as unknown as Record<string, UnaryMethod>)[call.method]!(call.request, (error) => {
      outstanding--;
      completed++;
      if (error && CONNECTION_FAILURES.has(error.code) && !stopping && !fatal) {
        fatal = true;
        send({ type: 'fatal', message: `${call.method}: ${error.message}` });
      }
      if (measured) {
        const micros = (nowNs() - intendedNs) / 1000;
        overall.record(micros);
        perCall[index]!.histogram.record(micros);
        if (error) errors++, perCall[index]!.errors++;
      }
      if (!stopping) then?.();
    });
  };

  const closedLoop = (client: grpc.Client, position: number): void =>
    issue(client, position, nowNs(), () => closedLoop(client, position + 1));

  /** Every call whose time has come, then a timer for the next one. */
  const openLoop = (ratePerSecond: number) => {
    const start = nowNs();
    const intervalNs = 1e9 / ratePerSecond;
    let next = 0;
    const tick = (): void => {
      if (stopping) return;
      const now = nowNs();
      for (; start + next * intervalNs <= now; next++) {
        const intendedNs = start + next * intervalNs;
        if (measuring) maxSendLagNs = Math.max(maxSendLagNs, now - intendedNs);
        issue(clients[next % clients.length]!, next, intendedNs);
      }
      setTimeout(tick, Math.max(0, (start + next * intervalNs - nowNs()) / 1e6));
    };
    tick();
  };

  const counter = setInterval(() => send({ type: 'count', completed }), COUNT_INTERVAL_MS);
  send({ type: 'ready' });
  process.on('message', (command: GrpcDriverCommand) => {
    if (command.type === 'run') {
      if (share.ratePerSecond !== undefined) openLoop(share.ratePerSecond);
      // Slots start at different places in the mix, so that a connection's calls interleave.
      else for (const client of clients) for (let slot = 0; slot < share.depth; slot++) closedLoop(client, slot);
    } else if (command.type === 'measure') {
      measuring = true;
      cpuStart = process.cpuUsage();
    } else if (command.type === 'stop') {
      const cpu = process.cpuUsage(cpuStart);
      measuring = false;
      stopping = true;
      clearInterval(counter);
      void drain(share.drainTimeoutMs, () => outstanding).then(() => {
        const result: GrpcShareResult = {
          requests: overall.count,
          errors,
          latency: overall.toData(),
          perCall: perCall.map((c) => ({ requests: c.histogram.count, errors: c.errors, latency: c.histogram.toData() })),
          lost: outstanding,
          cpuMicros: cpu.user + cpu.system,
          maxSendLagUs: maxSendLagNs / 1000,
        };
        for (const client of clients) client.close();
        send({ type: 'result', result });
        process.disconnect();
      });
    }
  });
}

/** Waits until nothing is in flight, or the timeout passes. */
async function drain(timeoutMs: number, inFlight: () => number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (inFlight() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

process.once('message', (command: GrpcDriverCommand) => {
  if (command.type !== 'start') throw new Error(`expected start, got ${command.type}`);
  drive(command.share).catch((error: unknown) => {
    send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    process.disconnect();
  });
});
