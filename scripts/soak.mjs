#!/usr/bin/env node
// The long mode of the reliability and fuzz suites (npm run test:soak): the same tests as
// `npm test` runs in CI mode, at soak sizes (KMUX_SOAK=1, see test/reliability/lib/mode.ts):
// 1,000,000 chaos requests per codec over 64 connections, 30 s of 3× overload, 64 MiB of
// replies 8 clients do not read (reply-memory: RSS against the counted bytes), fuzzing for
// minutes per target, 50,000 hostile connections per codec, 25 flooding connections at the
// default in-flight limits beside a well-behaved client. Takes about half an hour.
//
//   node scripts/soak.mjs [vitest filters...]       e.g. node scripts/soak.mjs chaos
//
// Every suite appends its measurements to a JSON-lines report, summarised at the end as
// markdown (the table in test/reliability/README.md comes from such a run).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = process.env.KMUX_SOAK_OUT ?? `${root}test/reliability/soak-results`;
mkdirSync(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const reportPath = `${outDir}/${stamp}.jsonl`;
const filters = process.argv.slice(2);

console.log(`soak: KMUX_SOAK=1, measurements in ${reportPath}`);
const started = Date.now();
const run = spawnSync(
  process.execPath,
  ['scripts/pnpm.mjs', 'exec', 'vitest', 'run', ...(filters.length ? filters : ['test/reliability', 'test/fuzz'])],
  { cwd: root, stdio: 'inherit', env: { ...process.env, KMUX_SOAK: '1', KMUX_RELIABILITY_REPORT: reportPath } },
);
const minutes = ((Date.now() - started) / 60_000).toFixed(1);

const rows = existsSync(reportPath)
  ? readFileSync(reportPath, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line))
  : [];
const lines = [`# kmux soak run ${stamp} (${minutes} min, exit ${run.status})`, ''];
const bySuite = new Map();
for (const row of rows) {
  if (!bySuite.has(row.suite)) bySuite.set(row.suite, []);
  bySuite.get(row.suite).push(row);
}
for (const [suite, entries] of bySuite) {
  const keys = [...new Set(entries.flatMap((e) => Object.keys(e)))].filter((k) => !['suite', 'soak', 'at'].includes(k));
  lines.push(`## ${suite}`, '', `| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`);
  for (const entry of entries) {
    lines.push(`| ${keys.map((k) => (typeof entry[k] === 'object' ? JSON.stringify(entry[k]) : String(entry[k] ?? ''))).join(' | ')} |`);
  }
  lines.push('');
}
const markdown = lines.join('\n');
writeFileSync(reportPath.replace(/\.jsonl$/, '.md'), markdown);
console.log(`\n${markdown}`);
process.exit(run.status ?? 1);
