/**
 * The ES module resolve hook behind module-fallback.ts, registered in each worker that
 * provides modules: a bare name that does not resolve from the importing file resolves to
 * kmux's copy.
 */
interface ResolveResult {
  readonly url: string;
  readonly shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context: unknown) => Promise<ResolveResult>;

let fallbacks: Readonly<Record<string, string>> = {};

export function initialize(data: { fallbacks: Record<string, string> }): void {
  fallbacks = data.fallbacks;
}

export async function resolve(specifier: string, context: unknown, next: NextResolve): Promise<ResolveResult> {
  try {
    return await next(specifier, context);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && Object.hasOwn(fallbacks, specifier)) {
      return { url: fallbacks[specifier]!, shortCircuit: true };
    }
    throw error;
  }
}
