#!/usr/bin/env node
// Where the addon's C++ sources are, relative to this package: `native/`, the copy that
// prepack puts into the published package, else `../../native` in the repository's
// workspace. binding.gyp runs this to name its sources; build-addon.mjs imports it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
/** The packaged copy, made by scripts/pack-sources.mjs. */
export const PACKAGED = 'native';
/** The repository's own sources, when built inside the workspace. */
export const WORKSPACE = join('..', '..', 'native');

export function nativeSourceDir() {
  const relative = existsSync(join(packageDir, PACKAGED, 'addon.cc')) ? PACKAGED : WORKSPACE;
  return { relative, absolute: join(packageDir, relative) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(nativeSourceDir().relative);
