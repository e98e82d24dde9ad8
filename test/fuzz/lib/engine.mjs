/**
 * The fuzz engine: runs in a worker thread started by run-fuzzer.ts, which watches it
 * through a shared heartbeat (iteration count and the input being run) so that a hang —
 * even a synchronous infinite loop — or a crash out of memory is caught and reported with
 * the input that caused it.
 *
 * Loop: replay the committed corpus (test/fuzz/corpus/<name>/), then mutate corpus
 * entries; after each batch of inputs, read V8 block coverage, and when something new was
 * reached, re-run that batch in halves to find and keep the inputs that reached it.
 * Every input goes through the target's `check`, which throws when a property fails.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { Coverage } from './coverage.mjs';
import { mutate } from './mutate.mjs';
import { prng } from './prng.mjs';

const { target: targetPath, options, corpusDir, outputDir, iterations, timeBudgetMs, seed, perInputMs, heartbeat, maxCorpus } =
  workerData;
const beat = new Int32Array(heartbeat, 0, 4);
const beatBytes = new Uint8Array(heartbeat, 16);

const MIN_BATCH = 8;
const MAX_BATCH = 256;

class PropertyFailure extends Error {}

function describe(error) {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
}

function publish(input) {
  const shown = Math.min(input.length, beatBytes.length);
  beatBytes.set(input.subarray(0, shown));
  Atomics.store(beat, 1, input.length);
  Atomics.add(beat, 0, 1);
}

async function runOne(target, input) {
  publish(input);
  const started = performance.now();
  let outcome;
  try {
    outcome = target.check(input, options);
  } catch (error) {
    throw new PropertyFailure(describe(error));
  }
  if (outcome && typeof outcome.then === 'function') {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new PropertyFailure(`no answer within ${perInputMs} ms (hang)`)), perInputMs);
    });
    try {
      await Promise.race([outcome, timeout]);
    } catch (error) {
      throw error instanceof PropertyFailure ? error : new PropertyFailure(describe(error));
    } finally {
      clearTimeout(timer);
    }
  }
  const elapsed = performance.now() - started;
  if (elapsed > perInputMs) throw new PropertyFailure(`took ${elapsed.toFixed(0)} ms, more than ${perInputMs} ms (unbounded time)`);
}

function save(input) {
  if (!outputDir) return;
  mkdirSync(outputDir, { recursive: true });
  const name = createHash('sha1').update(input).digest('hex').slice(0, 16);
  writeFileSync(join(outputDir, `${name}.bin`), input);
}

async function main() {
  const target = await import(pathToFileURL(targetPath).href);
  const coverage = new Coverage(target.coverage);
  // The code under test loads only now, after coverage started, so all of it is counted.
  await target.setup?.(options);
  const rng = prng(seed);

  const corpus = [];
  // A directory of .bin files, or one .bin file (to replay a finding).
  const files = !corpusDir ? [] : corpusDir.endsWith('.bin') ? [corpusDir] : readdirSync(corpusDir).filter((f) => f.endsWith('.bin')).sort().map((f) => join(corpusDir, f));
  const initial = files.map((f) => readFileSync(f));
  if (initial.length === 0) throw new Error(`empty corpus ${corpusDir}: run node test/fuzz/seed-corpus.mjs`);
  Atomics.store(beat, 2, 0); // phase: replaying the corpus
  for (const input of initial) {
    await runOne(target, input);
    if (coverage.novel(coverage.take()) > 0 || corpus.length === 0) corpus.push(input);
  }
  const replayed = initial.length;

  Atomics.store(beat, 2, 1); // phase: fuzzing
  const started = performance.now();
  let executed = 0;
  let added = 0;
  const mutateOptions = { corpus, dictionary: target.dictionary ?? [], ints: target.ints ?? [], maxLen: target.maxLen ?? 4096 };

  /** Re-runs `inputs` (which together reached something new), halving, to keep the ones that did. */
  const attribute = async (inputs) => {
    for (const input of inputs) await runOne(target, input);
    const features = coverage.take();
    if (!coverage.hasNovel(features)) return;
    if (inputs.length > 1) {
      const half = inputs.length >> 1;
      await attribute(inputs.slice(0, half));
      await attribute(inputs.slice(half));
    } else if (corpus.length < maxCorpus) {
      coverage.novel(features);
      corpus.push(inputs[0]);
      added++;
      save(inputs[0]);
    }
  };

  // Reading coverage costs a few ms, so inputs run in batches between reads: small while
  // they keep finding new code, doubling up to MAX_BATCH while they do not.
  let batchSize = MIN_BATCH;
  while (executed < iterations && performance.now() - started < timeBudgetMs) {
    const batch = [];
    for (let i = 0; i < batchSize && executed < iterations; i++, executed++) {
      // Favour the newest entries a little: they reached something recently.
      const parent = rng.chance(0.3) ? corpus[corpus.length - 1 - rng.int(0, Math.min(corpus.length, 16) - 1)] : rng.pick(corpus);
      const input = mutate(parent, rng, mutateOptions);
      await runOne(target, input);
      batch.push(input);
    }
    if (coverage.hasNovel(coverage.take())) {
      await attribute(batch);
      batchSize = MIN_BATCH;
    } else {
      batchSize = Math.min(batchSize * 2, MAX_BATCH);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const scripts = coverage.countedScripts;
  coverage.stop();
  return {
    replayed,
    executed,
    execsPerSecond: Math.round(executed / Math.max(seconds, 1e-3)),
    corpusSize: corpus.length,
    added,
    features: coverage.seen.size,
    scripts,
    heapUsedMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
  };
}

main().then(
  (stats) => parentPort.postMessage({ type: 'done', stats }),
  (error) => {
    const length = Atomics.load(beat, 1);
    parentPort.postMessage({
      type: 'failure',
      kind: error instanceof PropertyFailure ? 'property' : 'engine',
      message: error instanceof PropertyFailure ? error.message : describe(error),
      input: Buffer.from(beatBytes.subarray(0, Math.min(length, beatBytes.length))),
      truncated: length > beatBytes.length,
    });
  },
);
