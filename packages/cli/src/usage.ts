/** A mistake in the command line: reported with exit code 2 and no stack. */
export class UsageError extends Error {}

/** Runs a parseArgs call, turning its errors into UsageErrors that carry the command's help. */
export function withUsage<T>(help: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${help}`);
  }
}

export function numberOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0) throw new UsageError(`--${name} must be a non-negative number, got '${value}'`);
  return parsed;
}

export function integerOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new UsageError(`--${name} must be a non-negative integer, got '${value}'`);
  return parsed;
}
