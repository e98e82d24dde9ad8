/**
 * Child-process entry of the load generator: it gets a LoadSpec over IPC, runs it and
 * reports progress, the measured window's edges and the result back. Running apart from
 * the server lets the two use separate cores, and keeps the generator's CPU measurable.
 */
import { runLoad, type LoadSpec } from './load-generator.js';
import type { GeneratorMessage } from './generator-messages.js';

function send(message: GeneratorMessage): void {
  process.send!(message);
}

process.once('message', (spec: LoadSpec) => {
  runLoad(spec, {
    onProgress: (progress) => send({ type: 'progress', progress }),
    onMeasureStart: () => send({ type: 'measure-start' }),
    onMeasureEnd: () => send({ type: 'measure-end' }),
  }).then(
    (result) => {
      send({ type: 'result', result });
      process.disconnect();
    },
    (error: unknown) => {
      send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
      process.disconnect();
    },
  );
});
