#!/usr/bin/env node
// Compiles the addon with node-gyp. A failed compile must not fail the install
// (kmux runs without it, on the user-space transport), so the failure is written
// to build/addon-build-error.txt, which loadNative() reports as the reason.
// Skips the compile when the .node file is newer than every source. Downloads nothing:
// it builds against the Node headers on the machine, or says where they are missing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { nativeSourceDir, packageDir as pkg } from './native-sources.mjs';

const nativeDir = nativeSourceDir().absolute;
const addon = join(pkg, 'build', 'Release', 'kmux_native.node');
const errorFile = join(pkg, 'build', 'addon-build-error.txt');

function newestSource() {
  const sources = readdirSync(nativeDir).map((f) => join(nativeDir, f));
  sources.push(join(pkg, 'binding.gyp'));
  return Math.max(...sources.map((f) => statSync(f).mtimeMs));
}

if (existsSync(addon) && !existsSync(errorFile) && statSync(addon).mtimeMs > newestSource()) {
  console.log('@kmux/native: addon up to date');
  process.exit(0);
}

/** Records why there is no addon, for loadNative() to report; the install goes on. */
function giveUp(why, details) {
  mkdirSync(dirname(errorFile), { recursive: true });
  writeFileSync(errorFile, `${why}\n${details}\n`);
  console.warn(`@kmux/native: the addon did not build (${why}); kmux will run without it. Details: ${errorFile}`);
  process.exit(0);
}

/**
 * node-gyp: this package's own (a devDependency: the workspace build), else the one npm or
 * pnpm runs install scripts with (an install from the registry or a tarball).
 */
function findNodeGyp() {
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch (err) {
    const fromPackageManager = process.env.npm_config_node_gyp;
    if (fromPackageManager && existsSync(fromPackageManager)) return fromPackageManager;
    return giveUp('node-gyp is not available (npm and pnpm bring one; else `npm install -g node-gyp`)', String(err));
  }
}

/**
 * node-gyp downloads Node's headers unless it has them, so point it at local ones: a Node
 * installed with its headers (Debian's, NodeSource's, the official tarball) has them next
 * to the binary; else node-gyp's own cache, or npm_config_nodedir if the user set it.
 */
function headerArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return [`--nodedir=${prefix}`];
  const cached = join(homedir(), '.cache', 'node-gyp', process.versions.node);
  if (existsSync(join(cached, 'include', 'node', 'node_api.h'))) return [];
  return giveUp(
    `the Node ${process.version} headers are not on this machine (looked in ${prefix}/include/node and ${cached})`,
    'Install a Node that has its headers (the official tarball and NodeSource do; Debian: libnode-dev), ' +
      'or set npm_config_nodedir to them, then reinstall @kmux/native.',
  );
}

const nodeGyp = findNodeGyp();
const args = ['rebuild', ...headerArgs()];
const result = spawnSync(process.execPath, [nodeGyp, ...args], { cwd: pkg, encoding: 'utf8' });
if (result.status === 0) {
  rmSync(errorFile, { force: true });
  console.log(`@kmux/native: addon built: ${addon}`);
  process.exit(0);
}
// node-gyp's "gyp info" chatter would push the compiler's messages out of the tail.
const lines = `${result.stdout ?? ''}${result.stderr ?? ''}`.split('\n').filter((l) => !l.startsWith('gyp info'));
const tail = lines.slice(-40).join('\n');
process.stderr.write(`${tail}\n`);
const firstError = lines.find((l) => /\berror\b/i.test(l));
const why = result.error ? String(result.error) : `node-gyp rebuild exited with ${result.status}`;
giveUp(firstError ? `${why}: ${firstError.trim()}` : why, tail);
