// A worker killed right after answering keeps its counts in stats(): on sockmap the workers
// count the requests they read themselves (in shared memory the main thread keeps when a
// worker dies), in user space the main thread counts them.
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, gateTag, rejection, startServer, until } from '../helpers.js';

afterEach(cleanup);

const REQUESTS = 200;
const ROUNDS = 3;

for (const transport of ['userspace', 'sockmap'] as const) {
  describe(`stats() over ${transport}: a killed worker's counts`, () => {
    it('counts every request answered before the worker was killed', async () => {
      // One worker: it reads every frame, then dies. Each round ends well inside the workers'
      // 250 ms report interval, so counts that waited for a report would be lost.
      const s = await startServer({ transport, workers: 1 });
      for (let round = 1; round <= ROUNDS; round++) {
        const client = s.newClient();
        const replies = await Promise.all(Array.from({ length: REQUESTS }, (_, i) => client.call('echo', `r${round}-${i}`)));
        expect(replies.map(String)).toEqual(Array.from({ length: REQUESTS }, (_, i) => `r${round}-${i}`));
        // User space answers worker_died; sockmap closes the worker's connections.
        await rejection(s.newClient().call('exit', gateTag('exit')));
        await until(() => s.server.stats().workers[0]!.restarts === round && s.server.stats().workers[0]!.live, 'the replacement worker');

        const { requests, workers } = s.server.stats();
        expect(requests.outcomes).toEqual({ ok: REQUESTS * round, worker_died: round });
        // Each round's requests and the exit request that killed the worker.
        expect(requests.received).toBe((REQUESTS + 1) * round);
        expect(requests.dropped).toBe(0);
        expect(workers[0]).toMatchObject({ dispatched: (REQUESTS + 1) * round, completed: REQUESTS * round, inFlight: 0 });
      }
    });
  });
}
