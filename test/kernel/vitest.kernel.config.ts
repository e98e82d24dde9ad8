// The suite that runs inside the QEMU VM (see run.sh): tests that need a kernel
// with KCM and kTLS. Every *.test.ts under test/kernel/ belongs to it; the root
// vitest config leaves this directory out, since the host kernel lacks both.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const results = process.env.KMUX_KERNEL_RESULTS;
// Every reliability suite and the socket fuzzer, on KCM (the fuzz targets themselves are
// transport-free and run on the host).
const RELIABILITY_SUITES = ['test/reliability/{chaos,defaults,slow-clients,hostile-frames,memory-budget,overload,wire}.test.ts', 'test/fuzz/server.test.ts'];
// Host tests that take KMUX_TRANSPORTS, run on KCM too.
const TRANSPORT_TESTS = ['packages/core/test/transport/no-delay.test.ts'];

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  cacheDir: '/tmp/kmux-vitest-cache', // the guest's /tmp: nothing leaks back to the host
  test: {
    // The reliability suites too, on KCM, in their short mode (test/reliability/lib/mode.ts).
    include: ['test/kernel/**/*.test.ts', ...RELIABILITY_SUITES, ...TRANSPORT_TESTS],
    env: { KMUX_TRANSPORTS: 'kcm', KMUX_SHORT: '1' },
    // TCG runs node 10-20x slower than the host does.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One process for all files: each extra node start costs seconds under TCG.
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    // run.sh reads the counts from the JSON report, through a read-write share.
    reporters: results ? ['verbose', 'json'] : ['verbose'],
    outputFile: results ? { json: results } : undefined,
  },
});
