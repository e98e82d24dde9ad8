#!/usr/bin/env node
// prepack / postpack: copies the repository's native/ C++ sources into this package's
// native/, so that the published package can compile its addon at install with nothing
// outside it; `remove` deletes the copy again, so the workspace keeps building from the
// one source tree.
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGED, WORKSPACE, packageDir } from './native-sources.mjs';

const copy = join(packageDir, PACKAGED);
rmSync(copy, { recursive: true, force: true });
if (process.argv[2] === 'copy') {
  cpSync(join(packageDir, WORKSPACE), copy, { recursive: true });
  console.log(`@kmux/native: packed the C++ sources from ${WORKSPACE}`);
} else if (process.argv[2] !== 'remove') {
  console.error('usage: pack-sources.mjs copy|remove');
  process.exit(2);
}
