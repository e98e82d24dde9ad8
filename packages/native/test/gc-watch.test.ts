import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadNative, watchGcPauses } from '../src/index.js';

const allocator = new URL('./fixtures/gc-in-worker.mjs', import.meta.url);

/**
 * Runs the allocating worker and polls cells[0] from this thread, counting the times it saw
 * it turn 1 (a pause began), until it has seen `enough` or `ms` passed. Returns that count
 * and the cell once the worker has ended.
 */
async function pausesSeen(watch: boolean, enough: number, ms: number): Promise<{ seen: number; after: number }> {
  const cells = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(allocator, { workerData: { cells, watch } });
  await once(worker, 'online');
  let seen = 0;
  let last = 0;
  for (const end = Date.now() + ms; seen < enough && Date.now() < end; ) {
    const now = Atomics.load(cells, 0);
    if (now === 1 && last === 0) seen++;
    last = now;
  }
  Atomics.store(cells, 1, 1);
  const [code] = (await once(worker, 'exit')) as [number];
  expect(code).toBe(0);
  return { seen, after: Atomics.load(cells, 0) };
}

describe.runIf(loadNative().ok)('watchGcPauses', () => {
  it('shows another thread each GC pause of the watching thread, and 0 once it has ended', async () => {
    const { seen, after } = await pausesSeen(true, 3, 5_000);
    expect(seen).toBe(3);
    expect(after).toBe(0);
  });

  it('leaves the cell alone in a thread that does not watch', async () => {
    // A second of allocation collects many times (the test above sees 3 well within it).
    expect((await pausesSeen(false, 1, 1_000)).seen).toBe(0);
  });

  it('survives a watching thread terminated while it allocates', async () => {
    const cells = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(allocator, { workerData: { cells, watch: true } });
    await once(worker, 'online');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await worker.terminate();
    expect(Atomics.load(cells, 0)).toBe(0);
  });

  it('refuses a cell outside the array', () => {
    expect(() => watchGcPauses(new Int32Array(new SharedArrayBuffer(8)), 2)).toThrow(RangeError);
  });
});
