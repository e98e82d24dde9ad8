import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from './binding.js';

export type NativeLoadResult = { ok: true; binding: NativeBinding } | { ok: false; reason: string };

const addonPath = fileURLToPath(new URL('../build/Release/kmux_native.node', import.meta.url));
/** Written by scripts/build-addon.mjs when the compile failed. */
const buildErrorPath = fileURLToPath(new URL('../build/addon-build-error.txt', import.meta.url));

let loaded: NativeLoadResult | undefined;

/**
 * Loads the compiled addon once per thread (each worker thread has its own
 * module instance, and the addon is context-aware). Never throws: when the
 * addon is unusable the result says why, so callers can fall back and log it.
 */
export function loadNative(): NativeLoadResult {
  loaded ??= tryLoad();
  return loaded;
}

/** The binding, or an Error with loadNative()'s reason: for APIs that cannot work without it. */
export function requireNative(): NativeBinding {
  const native = loadNative();
  if (!native.ok) throw new Error(`@kmux/native: ${native.reason}`);
  return native.binding;
}

function tryLoad(): NativeLoadResult {
  if (existsSync(buildErrorPath)) {
    const firstLine = readFileSync(buildErrorPath, 'utf8').split('\n', 1)[0];
    return { ok: false, reason: `the addon did not build at install (${firstLine}); details in ${buildErrorPath}` };
  }
  try {
    return { ok: true, binding: createRequire(import.meta.url)(addonPath) as NativeBinding };
  } catch (err) {
    return { ok: false, reason: `cannot load ${addonPath}: ${(err as Error).message}` };
  }
}
