/**
 * Main-thread side of the fuzz engine: starts engine.mjs in a worker thread with a heap
 * limit, watches its heartbeat and turns every way a run can go wrong into a result with
 * the offending input, saved under test/fuzz/findings/ for replay:
 *
 * - `property`: the target's check threw (a property does not hold), or an async check did
 *   not settle within perInputMs, or a sync one took longer than that;
 * - `hang`: the worker made no progress for stallMs (a synchronous infinite loop);
 * - `oom`: the worker ran out of its heap (resourceLimits);
 * - `crash` / `engine`: anything else that killed the run.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const HERE = new URL('.', import.meta.url);
export const FUZZ_DIR = fileURLToPath(new URL('..', HERE));
export const CORPUS_DIR = fileURLToPath(new URL('../corpus/', HERE));
export const FINDINGS_DIR = fileURLToPath(new URL('../findings/', HERE));
const HEARTBEAT_INPUT_BYTES = 1 << 20;

export interface FuzzOptions {
  /** Module name under test/fuzz/targets/, without extension. */
  readonly target: string;
  /** Corpus directory name under test/fuzz/corpus/ (or an absolute .bin file to replay). */
  readonly corpus: string;
  /** Passed to the target's setup() and check(). */
  readonly options?: unknown;
  readonly iterations: number;
  readonly timeBudgetMs: number;
  readonly seed: number;
  /** Bound on one input: async checks must settle, sync ones must return, within it. */
  readonly perInputMs?: number;
  /** No progress for this long is a hang. */
  readonly stallMs?: number;
  /** Heap limit of the engine thread; exceeding it is reported as `oom`. */
  readonly heapMb?: number;
  /** Where inputs that reach new coverage are written; none by default. */
  readonly outputDir?: string;
  readonly maxCorpus?: number;
}

export interface FuzzStats {
  readonly replayed: number;
  readonly executed: number;
  readonly execsPerSecond: number;
  readonly corpusSize: number;
  readonly added: number;
  readonly features: number;
  readonly scripts: string[];
  readonly heapUsedMb: number;
}

export type FuzzResult =
  | { readonly ok: true; readonly stats: FuzzStats }
  | {
      readonly ok: false;
      readonly kind: 'property' | 'hang' | 'oom' | 'crash' | 'engine';
      readonly message: string;
      readonly input: Buffer;
      readonly finding: string;
    };

export function runFuzzer(run: FuzzOptions): Promise<FuzzResult> {
  const heartbeat = new SharedArrayBuffer(16 + HEARTBEAT_INPUT_BYTES);
  const beat = new Int32Array(heartbeat, 0, 4);
  const beatBytes = new Uint8Array(heartbeat, 16);
  const corpusDir = run.corpus.endsWith('.bin') ? run.corpus : `${CORPUS_DIR}${run.corpus}`;
  const worker = new Worker(new URL('./engine.mjs', HERE), {
    workerData: {
      target: fileURLToPath(new URL(`../targets/${run.target}.mjs`, HERE)),
      options: run.options ?? {},
      corpusDir,
      outputDir: run.outputDir ?? null,
      iterations: run.iterations,
      timeBudgetMs: run.timeBudgetMs,
      seed: run.seed,
      perInputMs: run.perInputMs ?? 2000,
      heartbeat,
      maxCorpus: run.maxCorpus ?? 4096,
    },
    resourceLimits: { maxOldGenerationSizeMb: run.heapMb ?? 256 },
    stdout: false,
    stderr: false,
  });

  const currentInput = (): Buffer => {
    const length = Atomics.load(beat, 1);
    return Buffer.from(beatBytes.subarray(0, Math.min(length, beatBytes.length)));
  };
  const finding = (kind: string, input: Buffer): string => {
    mkdirSync(FINDINGS_DIR, { recursive: true });
    const path = `${FINDINGS_DIR}${run.corpus.replace(/[^\w-]/g, '_').slice(-40)}-${kind}-${createHash('sha1').update(input).digest('hex').slice(0, 12)}.bin`;
    writeFileSync(path, input);
    return path;
  };

  return new Promise<FuzzResult>((resolve) => {
    let settled = false;
    const stallMs = run.stallMs ?? 15_000;
    let lastCount = -1;
    let lastChange = Date.now();
    const settle = (result: FuzzResult): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      void worker.terminate();
      resolve(result);
    };
    // Not once settled: terminate() makes the thread exit, and that must not save a 'crash'.
    const fail = (kind: Exclude<FuzzResult, { ok: true }>['kind'], message: string, input = currentInput()): void => {
      if (!settled) settle({ ok: false, kind, message, input, finding: finding(kind, input) });
    };

    const watchdog = setInterval(() => {
      const count = Atomics.load(beat, 0);
      if (count !== lastCount) {
        lastCount = count;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > stallMs) {
        fail('hang', `no progress for ${stallMs} ms (phase ${Atomics.load(beat, 2) ? 'fuzzing' : 'corpus replay'}, input #${count})`);
      }
    }, 100);

    worker.on('message', (message: { type: string; stats?: FuzzStats; kind?: 'property' | 'engine'; message?: string; input?: Uint8Array }) => {
      if (message.type === 'done') settle({ ok: true, stats: message.stats! });
      else fail(message.kind!, message.message!, Buffer.from(message.input!));
    });
    worker.on('error', (error: Error & { code?: string }) => {
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') fail('oom', `engine thread ran out of its ${run.heapMb ?? 256} MB heap: ${error.message}`);
      else fail('crash', `${error.name}: ${error.message}\n${error.stack ?? ''}`);
    });
    worker.on('exit', (code) => fail('crash', `engine thread exited with code ${code} before reporting`));
  });
}

/** A readable account of a failed run, with how to replay it. */
export function describeFailure(result: Exclude<FuzzResult, { ok: true }>, run: FuzzOptions): string {
  const hex = result.input.subarray(0, 512).toString('hex');
  return [
    `fuzz target ${run.target} (${JSON.stringify(run.options ?? {})}), seed ${run.seed}: ${result.kind}`,
    result.message,
    `input (${result.input.length} bytes${result.input.length > 512 ? ', first 512 shown' : ''}): ${hex}`,
    `saved as ${result.finding}; replay with KMUX_FUZZ_REPLAY=${result.finding}`,
  ].join('\n');
}
