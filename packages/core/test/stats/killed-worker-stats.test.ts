// A worker killed right after answering keeps its counts in stats(): on sockmap the workers
// count the requests they read themselves (in shared memory the main thread keeps when a
// worker dies), per method too; in user space the main thread counts them.
import { encodeFrame, encodeRawRequest } from '@kmux/core';
import { afterEach, describe, expect, it } from 'vitest';
import { RawConnection, cleanup, gateTag, rejection, startServer, until } from '../helpers.js';
import { parsePrometheus, sampleValue } from './prometheus-parse.js';

afterEach(cleanup);

const REQUESTS = 200;
const FAILURES = 20;
const ROUNDS = 3;

for (const transport of ['userspace', 'sockmap'] as const) {
  describe(`stats() over ${transport}: a killed worker's counts`, () => {
    it('counts every request answered before the worker was killed, per method and in the latency histograms', async () => {
      // One worker: it reads every frame, then dies right after its last answer, so counts
      // that waited to be reported now and then would be lost.
      const s = await startServer({ transport, workers: 1 });
      for (let round = 1; round <= ROUNDS; round++) {
        const client = s.newClient();
        const [replies] = await Promise.all([
          Promise.all(Array.from({ length: REQUESTS }, (_, i) => client.call('echo', `r${round}-${i}`))),
          Promise.all(Array.from({ length: FAILURES }, () => rejection(client.call('fail', 'x')))),
        ]);
        expect(replies.map(String)).toEqual(Array.from({ length: REQUESTS }, (_, i) => `r${round}-${i}`));
        // User space answers worker_died; sockmap closes the worker's connections.
        await rejection(s.newClient().call('exit', gateTag('exit')));
        await until(() => s.server.stats().workers[0]!.restarts === round && s.server.stats().workers[0]!.live, 'the replacement worker');

        const answered = REQUESTS + FAILURES;
        const { requests, workers, methods, latencyUs } = s.server.stats();
        expect(requests.outcomes).toEqual({ ok: REQUESTS * round, failed: FAILURES * round, worker_died: round });
        // Each round's requests and the exit request that killed the worker.
        expect(requests.received).toBe((answered + 1) * round);
        expect(requests.dropped).toBe(0);
        expect(workers[0]).toMatchObject({ dispatched: (answered + 1) * round, completed: answered * round, inFlight: 0 });
        expect(workers[0]!.latencyUs.count).toBe(answered * round);
        expect(methods.echo).toMatchObject({ calls: REQUESTS * round, failures: 0 });
        expect(methods.echo!.latencyUs.count).toBe(REQUESTS * round);
        expect(methods.fail).toMatchObject({ calls: FAILURES * round, failures: FAILURES * round });
        expect(methods.fail!.latencyUs.count).toBe(FAILURES * round);
        // In user space the main thread answers the exit request (worker_died); on sockmap the
        // worker that read it died with it, and the main thread only counts it lost.
        const exits = transport === 'userspace' ? round : 0;
        expect(methods.exit?.calls ?? 0).toBe(exits);
        expect(latencyUs.count).toBe(answered * round + exits);
        const metrics = parsePrometheus(s.server.metrics());
        expect(sampleValue(metrics, 'kmux_method_calls_total', { method: 'echo' })).toBe(REQUESTS * round);
        expect(sampleValue(metrics, 'kmux_request_duration_seconds_count', { method: 'fail' })).toBe(FAILURES * round);
      }
    });
  });
}

describe('stats() over sockmap: a method first called just before its worker dies', () => {
  it('counts it: the worker hands its tally over and exits in the same tick', async () => {
    const s = await startServer({ transport: 'sockmap', workers: 1 });
    const frame = (id: number, method: string, payload: string): Buffer => encodeFrame(encodeRawRequest(id, method, Buffer.from(payload)));
    for (let round = 1; round <= 5; round++) {
      // One write, so that the worker reads both frames at once: it answers `upper` (new to
      // this worker: it posts the method's tally to the main thread), then exits.
      const conn = await RawConnection.open(s.port);
      conn.write(Buffer.concat([frame(1, 'upper', 'x'), frame(2, 'exit', gateTag('exit'))]));
      await conn.closed;
      await until(() => s.server.stats().workers[0]!.restarts === round && s.server.stats().workers[0]!.live, 'the replacement worker');

      const { requests, methods } = s.server.stats();
      expect(requests.outcomes).toEqual({ ok: round, worker_died: round });
      expect(methods.upper).toMatchObject({ calls: round, failures: 0 });
      expect(methods.upper!.latencyUs.count).toBe(round);
    }
  });
});
