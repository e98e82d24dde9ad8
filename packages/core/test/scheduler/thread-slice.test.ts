import { readdirSync, readFileSync } from 'node:fs';
import { release as kernelRelease } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, startServer } from '../helpers.js';

afterEach(cleanup);

/** The EEVDF slice (ns) of every thread of this process, from /proc. */
function threadSlicesNs(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    const match = /^se\.slice\s*:\s*(\d+)/m.exec(readFileSync(`/proc/self/task/${tid}/sched`, 'utf8'));
    return match ? [Number(match[1])] : [];
  });
}

const [major = 0, minor = 0] = kernelRelease().split('.').map(Number);
const eevdfSlices = major > 6 || (major === 6 && minor >= 12);

describe.runIf(eevdfSlices)('threadSliceUs (a kernel with EEVDF slices, ≥ 6.12)', () => {
  it('gives the main thread and every worker a 100 µs slice by default, and says so in stats()', async () => {
    const before = threadSlicesNs().filter((ns) => ns === 100_000).length;
    const { server } = await startServer({ workers: 2 });
    const stats = server.stats();
    expect(stats.threadSlice).toMatchObject({ requestedUs: 100, mainThread: { ok: true } });
    expect(stats.workers.map((w) => w.threadSlice?.ok)).toEqual([true, true]);
    // The kernel's own view: the dispatching thread (if it was not already) and both workers.
    expect(threadSlicesNs().filter((ns) => ns === 100_000).length).toBeGreaterThanOrEqual(Math.max(before, 1) + 2);
  });

  it('leaves the kernel default with threadSliceUs: false', async () => {
    const { server } = await startServer({ workers: 1, threadSliceUs: false });
    expect(server.stats().threadSlice).toEqual({ requestedUs: null, mainThread: null });
    expect(server.stats().workers[0]!.threadSlice).toBeNull();
  });

  it('refuses a slice under the kernel minimum', async () => {
    await expect(startServer({ threadSliceUs: 50 })).rejects.toThrow(/at least 100/);
  });
});
