#!/usr/bin/env node
// Writes every fuzz target's generated seeds (valid frames: see each target's seeds())
// into test/fuzz/corpus/<corpus>/seed-<hash>.bin. Run after a change to the wire formats
// or the example service; the inputs the fuzzer found (other names) are kept.
//
//   node test/fuzz/seed-corpus.mjs
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';

export const CORPORA = [
  { target: 'frame-splitter', corpus: 'frame-splitter' },
  { target: 'thrift-head', corpus: 'thrift-head' },
  { target: 'thrift-worker', corpus: 'thrift-worker-binary', options: { protocol: 'binary' } },
  { target: 'thrift-worker', corpus: 'thrift-worker-compact', options: { protocol: 'compact' } },
  { target: 'raw-wire', corpus: 'raw-wire' },
  { target: 'protobuf-worker', corpus: 'protobuf-worker' },
];

for (const { target, corpus, options = {} } of CORPORA) {
  const module = await import(new URL(`./targets/${target}.mjs`, import.meta.url).href);
  await module.setup?.(options);
  const dir = new URL(`./corpus/${corpus}/`, import.meta.url);
  mkdirSync(dir, { recursive: true });
  const seeds = module.seeds(options);
  for (const seed of seeds) {
    writeFileSync(new URL(`seed-${createHash('sha1').update(seed).digest('hex').slice(0, 12)}.bin`, dir), seed);
  }
  console.log(`${corpus}: ${seeds.length} seeds`);
}
