// One client's flood must not delay, or get refused, everyone else (issue 13, item 2).
//
// N flooding connections write, as fast as the socket takes it, a burst of requests that
// each hold a worker for 100 µs, 4 × maxInFlightPerConnection of them, and never read a
// reply (fixtures/flooder.mjs): together more than the server-wide maxInFlight, and far
// more work than the workers can do at once. The requests block without using the CPU, so
// that what is measured is queueing (what fair dispatch fixes), not the machine's CPU
// contention (docs/tail-latency.md). Meanwhile a well-behaved client calls one request at a time, and
// fresh clients connect one after another and each makes its first call. Asserted: none is
// ever refused, the well-behaved client's p99 and the fresh clients' median first call stay
// within 2 × the unloaded p99 + 5 ms. The median, not each first call: the clients share the
// test process's event loop with the server, so one call can catch a garbage collection of
// the flood's buffers (one of six quiet runs saw a 13 ms first call beside 2–6 ms ones); a
// flood that queued ahead of them delays every one (4.4 s in the run).
//
// User space and native: there the main thread (user space) or the I/O thread (native) queues
// requests per connection and sheds only from connections holding a fair share of the
// in-flight budget. KCM and sockmap do not yet (each worker refuses past its maxInFlight /
// workers, whoever holds it): on sockmap the well-behaved client was refused in this test
// (docs/tail-latency.md). On native before its I/O thread shed by fair share, the fresh
// client's first call took 10–58 ms (3 of 3 runs, bound 6–19 ms): the flood's excess went to
// the workers, which queued up to maxInFlightPerConnection of it ahead of it.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { TRANSPORTS, report, sized, timeoutMs } from './lib/mode.js';
import { closeAll, percentile, startServer } from './lib/harness.js';
import { startGoodClient } from './lib/good-client.js';
import { WIRES } from './lib/wire.js';

const wire = WIRES.raw;
afterAll(closeAll);

/** Fresh clients that each make one first call under the flood. */
const FRESH_CLIENTS = 5;

/** How long each flood request holds a worker. */
const FLOOD_NAP_US = 100;

/** Starts the flooding connections in a thread of their own (fixtures/flooder.mjs). */
async function startFlood(port: number, connections: number, requests: number): Promise<{ stop(): Promise<void> }> {
  const workerData = { port, connections, requests, napUs: FLOOD_NAP_US };
  const worker = new Worker(new URL('./fixtures/flooder.mjs', import.meta.url), { workerData });
  await once(worker, 'message');
  return {
    async stop() {
      worker.postMessage('stop');
      await once(worker, 'exit');
    },
  };
}

/** `calls` serial calls of a fresh well-behaved client: their latencies (ms) and anything that went wrong. */
async function politeCalls(port: number, calls: number): Promise<{ latenciesMs: number[]; errors: string[] }> {
  const client = await startGoodClient(wire, port, 1);
  await client.progress(calls, timeoutMs(30_000));
  const { latenciesMs, errors } = await client.stop();
  return { latenciesMs, errors };
}

for (const transport of ['userspace', 'native'] as const) {
  describe.skipIf(!TRANSPORTS.includes(transport))(`a flood over ${transport}`, () => {
    it(
      'neither delays a well-behaved client past 2 × its unloaded p99 + 5 ms nor gets it refused',
      async () => {
        const perConnection = sized(256, 1024, 'KMUX_FLOOD_PER_CONNECTION');
        // Fewer places than the flooders could hold at their own limits: the server's limit binds.
        const maxInFlight = sized(1024, 16_384, 'KMUX_FLOOD_MAX_IN_FLIGHT');
        const flooders = sized(6, 25, 'KMUX_FLOOD_CONNECTIONS', 4);
        const calls = sized(300, 3000, 'KMUX_FLOOD_CALLS', 100);
        const { server, port } = await startServer(wire, transport, { maxInFlight, maxInFlightPerConnection: perConnection });

        const unloaded = await politeCalls(port, calls);
        expect(unloaded.errors).toEqual([]);
        const unloadedP99 = percentile(unloaded.latenciesMs, 99);

        const flood = await startFlood(port, flooders, 4 * perConnection);
        // The flood is on once the server has read every burst and refused past its limits.
        const bursts = flooders * 4 * perConnection;
        const floodedInFlight = await new Promise<number>((resolve) => {
          const check = setInterval(() => {
            const { received, inFlight, outcomes } = server.stats().requests;
            if (received >= bursts && (outcomes.overloaded ?? 0) > 0) {
              clearInterval(check);
              resolve(inFlight);
            }
          }, 5);
        });
        const fresh: { latenciesMs: number[]; errors: string[] } = { latenciesMs: [], errors: [] };
        for (let i = 0; i < FRESH_CLIENTS; i++) {
          const first = await politeCalls(port, 1);
          fresh.latenciesMs.push(first.latenciesMs[0]!);
          fresh.errors.push(...first.errors);
        }
        const freshMedian = percentile(fresh.latenciesMs, 50);
        const loaded = await politeCalls(port, calls);
        await flood.stop();
        const loadedP99 = percentile(loaded.latenciesMs, 99);
        const bound = 2 * unloadedP99 + 5;
        const refusedFlood = server.stats().requests.outcomes.overloaded ?? 0;
        report('flood-fairness', {
          transport,
          flooders,
          maxInFlight,
          perConnection,
          floodedInFlight,
          refusedFlood,
          unloadedP99Ms: Number(unloadedP99.toFixed(2)),
          loadedP99Ms: Number(loadedP99.toFixed(2)),
          freshFirstCallsMs: fresh.latenciesMs.map((ms) => Number(ms.toFixed(2))),
          boundMs: Number(bound.toFixed(2)),
        });
        expect(fresh.errors, JSON.stringify({ unloadedP99, loadedP99, fresh: fresh.latenciesMs, floodedInFlight })).toEqual([]);
        expect(loaded.errors).toEqual([]);
        expect(freshMedian, `fresh clients' first calls ${fresh.latenciesMs.join(', ')} ms, unloaded p99 ${unloadedP99} ms`).toBeLessThanOrEqual(bound);
        expect(loadedP99, `p99 under the flood, unloaded p99 ${unloadedP99} ms`).toBeLessThanOrEqual(bound);
        // The flood itself was real: past the server's limit, its excess was refused.
        expect(refusedFlood).toBeGreaterThan(0);
      },
      timeoutMs(60_000),
    );
  });
}
