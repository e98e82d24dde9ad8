/**
 * A user's handler module, loaded in a worker the same way by every codec: imported by path
 * (a failure names the file and line), checked against the methods the service declares, and
 * its per-worker `init()` run before the worker serves.
 */
import { pathToFileURL } from 'node:url';

export type HandlerObject = Readonly<Record<string, unknown>>;

/** The per-worker set-up function a handler module may export beside its methods. */
export const INIT_HOOK = 'init';

/**
 * Imports the module at `path` and returns its handler object: a CommonJS module's
 * `module.exports`, an ES module's default export, or else its named exports. A module that
 * fails to load (a syntax error, a throw at top level, a missing import) fails with its file
 * and line.
 */
export async function importHandlerModule(path: string): Promise<unknown> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(path.startsWith('file:') ? path : pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    const where = failedAt(error);
    const message = error instanceof Error ? `${error.name}: ${error.message.split('\n', 1)[0]}` : String(error);
    throw new Error(`cannot load handler module ${path}${where ? ` (at ${where})` : ''}: ${message}`);
  }
  return namespace.default ?? namespace;
}

/** The first `file:line` of a user's file in an error's stack, or null. */
function failedAt(error: unknown): string | null {
  const stack = error instanceof Error ? (error.stack ?? '') : '';
  for (const match of stack.matchAll(/(?:^|[\s(])(?:file:\/\/)?(\/[^\s():]+):(\d+)/gm)) {
    if (!match[1]!.includes('/node_modules/')) return `${match[1]}:${match[2]}`;
  }
  return null;
}

/** Every function the handler object offers, its prototype chain's included (a class instance's methods). */
function functionNames(handler: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = handler; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name !== 'constructor' && typeof (handler as Record<string, unknown>)[name] === 'function') names.add(name);
    }
  }
  return [...names];
}

/**
 * Checks a handler object against the names of the service's methods (as the handler spells
 * them). A function that matches none (a typo such as `gett`) throws, listing the valid
 * names; a declared method without a function is returned as a warning.
 */
export function checkHandler(path: string, handler: object, declared: readonly string[]): string[] {
  const offered = functionNames(handler);
  const unknown = offered.filter((name) => !declared.includes(name) && name !== INIT_HOOK);
  if (unknown.length > 0) {
    throw new TypeError(
      `handler module ${path} has ${unknown.map((n) => `'${n}'`).join(', ')}, which the service does not declare; ` +
        `its methods are: ${declared.join(', ')}` +
        (declared.includes(INIT_HOOK) ? '' : ` (and '${INIT_HOOK}', run once per worker before it serves)`),
    );
  }
  return declared
    .filter((name) => !offered.includes(name))
    .map((name) => `handler module ${path} has no '${name}': calls to it will fail as an unknown method`);
}

/** Runs the handler's `init()`, when it has one that is not a service method, once in this worker. */
export async function initHandler(path: string, handler: HandlerObject, declared: readonly string[]): Promise<void> {
  const init = handler[INIT_HOOK];
  if (typeof init !== 'function' || declared.includes(INIT_HOOK)) return;
  try {
    await (init as () => unknown).call(handler);
  } catch (error) {
    throw new Error(`init() of handler module ${path} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
