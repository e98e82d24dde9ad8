export interface Rng {
  next(): number;
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}
export function mutate(
  parent: Buffer,
  rng: Rng,
  options?: { corpus?: readonly Buffer[]; dictionary?: readonly Buffer[]; ints?: readonly number[]; maxLen?: number; maxEditsLog2?: number },
): Buffer;
export function varint(value: number, width?: number): Buffer;
