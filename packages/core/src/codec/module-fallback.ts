/**
 * Lets the user's modules that a worker loads (generated Thrift code requiring `thrift`, a
 * handler importing `@kmux/protobuf`) find the copy kmux brings when the user's project has
 * none, instead of failing with "Cannot find module". Their own copy, where they have one,
 * still wins: the fallback applies only once normal resolution has failed, and only to the
 * names a codec provides. ES imports go through a resolve hook (hooks are per thread);
 * CommonJS `require` does not use those hooks on Node 20, so it gets the same fallback in
 * its resolver.
 */
import Module, { register } from 'node:module';
import { pathToFileURL } from 'node:url';

/** Bare module name → absolute path of the file it falls back to. */
export type ModuleFallbacks = Readonly<Record<string, string>>;

type ResolveFilename = (request: string, ...rest: unknown[]) => string;
const loader = Module as unknown as { _resolveFilename: ResolveFilename };
const requireFallbacks = new Map<string, string>();

export function provideModules(fallbacks: ModuleFallbacks): void {
  const urls = Object.fromEntries(Object.entries(fallbacks).map(([name, path]) => [name, pathToFileURL(path).href]));
  register(new URL('./module-fallback-hooks.js', import.meta.url), { data: { fallbacks: urls } });
  if (requireFallbacks.size === 0) patchRequire();
  for (const [name, path] of Object.entries(fallbacks)) requireFallbacks.set(name, path);
}

function patchRequire(): void {
  const resolveFilename = loader._resolveFilename;
  loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    try {
      return resolveFilename.call(this, request, ...rest);
    } catch (error) {
      const fallback = requireFallbacks.get(request);
      if (fallback && (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return fallback;
      throw error;
    }
  };
}
