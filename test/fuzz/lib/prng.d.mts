import type { Rng } from './mutate.mjs';
export function prng(seed: number): Rng;
