#!/usr/bin/env node
// Packs the published packages (kmux, @kmux/core, @kmux/thrift, @kmux/protobuf,
// @kmux/native) into one directory of tarballs that install outside this repository:
// `npm install <dir>/*.tgz`. Run after a build (`npm run pack` builds first).
// pnpm pack turns workspace:* dependencies into the packages' versions, and runs
// @kmux/native's prepack, which copies the C++ sources into it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const destination = resolve(process.argv[2] ?? join(root, 'packs'));
mkdirSync(destination, { recursive: true });

const packages = readdirSync(join(root, 'packages'))
  .map((name) => join(root, 'packages', name))
  .filter((dir) => !JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).private);

for (const dir of packages) {
  const pnpm = [join(root, 'scripts', 'pnpm.mjs'), '--dir', dir, 'pack', '--pack-destination', destination];
  const result = spawnSync(process.execPath, pnpm, { encoding: 'utf8' });
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout}${result.stderr}`);
    console.error(`pack: pnpm pack failed in ${dir}`);
    process.exit(1);
  }
}
console.log(`pack: ${packages.length} packages in ${destination}:`);
for (const file of readdirSync(destination).filter((f) => f.endsWith('.tgz'))) console.log(`  ${file}`);
