// Coverage-guided fuzzing of the code that reads untrusted bytes: the frame splitter, the
// Thrift message-head reader, the Thrift worker codec on the example Catalog service (both
// protocols) and the raw codec's wire. Each target replays its committed corpus
// (test/fuzz/corpus/<target>/) and then mutates it for a fixed number of inputs: 1,500 to
// 5,000 in CI (capped at 3 s), 3 minutes of it per target with KMUX_SOAK=1. See
// test/reliability/README.md.
//
//   KMUX_FUZZ_ITERATIONS=n   inputs per target           KMUX_FUZZ_SEED=n   replay a run
//   KMUX_FUZZ_SECONDS=s      time budget per target      KMUX_FUZZ_SAVE=1   grow the committed corpus
//   KMUX_FUZZ_REPLAY=file    run one saved finding through every target's check
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SOAK, report, sized, timeoutMs } from '../reliability/lib/mode.js';
import { CORPUS_DIR, describeFailure, runFuzzer, type FuzzOptions } from './lib/run-fuzzer.js';

const TARGETS: readonly { target: string; corpus: string; options?: unknown; ci: number }[] = [
  { target: 'frame-splitter', corpus: 'frame-splitter', ci: 5000 },
  { target: 'thrift-head', corpus: 'thrift-head', ci: 5000 },
  { target: 'thrift-worker', corpus: 'thrift-worker-binary', options: { protocol: 'binary' }, ci: 1500 },
  { target: 'thrift-worker', corpus: 'thrift-worker-compact', options: { protocol: 'compact' }, ci: 1500 },
  { target: 'raw-wire', corpus: 'raw-wire', ci: 5000 },
  { target: 'protobuf-worker', corpus: 'protobuf-worker', ci: 1500 },
];

const scratch = mkdtempSync(join(tmpdir(), 'kmux-fuzz-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const replay = process.env.KMUX_FUZZ_REPLAY;
const baseSeed = Number(process.env.KMUX_FUZZ_SEED ?? (SOAK ? Date.now() % 2 ** 31 : 20_251_123));

describe('fuzzing the readers of untrusted bytes', () => {
  TARGETS.forEach(({ target, corpus, options, ci }, index) => {
    const name = `${corpus}: ${replay ? 'replays the given input' : 'holds its properties for every corpus entry and mutation'}`;
    it(
      name,
      async () => {
        const run: FuzzOptions = {
          target,
          corpus: replay ?? corpus,
          options,
          iterations: replay ? 0 : sized(ci, 5_000_000, 'KMUX_FUZZ_ITERATIONS'),
          // A cap, so a loaded machine cannot stretch the CI run; the soak runs to it.
          timeBudgetMs: 1000 * sized(3, 180, 'KMUX_FUZZ_SECONDS'),
          seed: baseSeed + index,
          perInputMs: 2000,
          stallMs: 15_000,
          heapMb: 256,
          // New coverage goes to a scratch directory, or into the committed corpus on request.
          outputDir: process.env.KMUX_FUZZ_SAVE === '1' ? `${CORPUS_DIR}${corpus}` : join(scratch, corpus),
        };
        const result = await runFuzzer(run);
        if (!result.ok) expect.fail(describeFailure(result, run));
        const { stats } = result;
        report('fuzz', { target: corpus, seed: run.seed, ...stats, scripts: stats.scripts.length });
        // The run really exercised the code under test: inputs ran and coverage was read.
        expect(stats.replayed).toBeGreaterThan(0);
        if (!replay) {
          expect(stats.executed).toBeGreaterThan(Math.min(run.iterations, 200));
          expect(stats.scripts.length).toBeGreaterThan(0);
          expect(stats.features).toBeGreaterThan(10);
        }
        // Nothing accumulated per input: the engine's heap stays small.
        expect(stats.heapUsedMb).toBeLessThan(200);
      },
      timeoutMs(60_000, 4 * 60 * 60_000),
    );
  });
});
