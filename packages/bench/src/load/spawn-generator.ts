import { fork } from 'node:child_process';
import type { GeneratorMessage } from './generator-messages.js';
import type { LoadEvents, LoadResult, LoadSpec } from './load-generator.js';

const GENERATOR_ENTRY = new URL('./generator-process.js', import.meta.url);

/** Runs a load in a fresh child process (see generator-process.ts) and returns its result. */
export function runLoadInChild(spec: LoadSpec, events: LoadEvents = {}): Promise<LoadResult> {
  // 'advanced' serialization carries the request templates' Buffers as bytes.
  const child = fork(GENERATOR_ENTRY, [], { serialization: 'advanced', stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    let settled = false;
    child.on('message', (message: GeneratorMessage) => {
      switch (message.type) {
        case 'progress':
          events.onProgress?.(message.progress);
          break;
        case 'measure-start':
          events.onMeasureStart?.();
          break;
        case 'measure-end':
          events.onMeasureEnd?.();
          break;
        case 'result':
          settled = true;
          resolve(message.result);
          break;
        case 'failed':
          settled = true;
          reject(new Error(`load generator failed: ${message.message}`));
          break;
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (!settled) reject(new Error(`load generator exited early (code ${code}, signal ${signal})`));
    });
    child.send(spec);
  });
}
