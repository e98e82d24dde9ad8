#!/usr/bin/env node
// One entry point for every root script: installs the workspace with the pinned pnpm,
// builds every package (TypeScript and the native addon), and, unless --build-only,
// installs the Debian packages the interop tests talk to (python3-thrift, python3-protobuf,
// protobuf-compiler).
// Each step is skipped when it is already done, so repeated runs are cheap.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const buildOnly = process.argv.includes('--build-only');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`bootstrap: '${cmd} ${args.join(' ')}' failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

const pnpm = (...args) => run(process.execPath, ['scripts/pnpm.mjs', ...args]);

pnpm('install', '--prefer-offline', ...(process.env.CI ? ['--frozen-lockfile'] : []));
pnpm('-r', '--workspace-concurrency=1', 'run', 'build');

if (!buildOnly) {
  const { ensureDebianPackages } = await import('./system-deps.mjs');
  ensureDebianPackages();
}
