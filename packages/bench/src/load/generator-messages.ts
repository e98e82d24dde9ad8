import type { LoadProgress, LoadResult } from './load-generator.js';

/** What the generator child process reports to its parent over IPC. */
export type GeneratorMessage =
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'measure-start' }
  | { type: 'measure-end' }
  | { type: 'result'; result: LoadResult }
  | { type: 'failed'; message: string };
