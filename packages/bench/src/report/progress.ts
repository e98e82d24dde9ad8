import type { LoadProgress } from '../load/load-generator.js';

/**
 * A progress reporter for one run: rewrites a single status line on a terminal, prints
 * one line per report elsewhere (CI logs). `done()` ends the line.
 */
export function progressLine(label: string, warmupSeconds: number, durationSeconds: number) {
  const tty = process.stderr.isTTY;
  const write = (text: string): void => {
    if (tty) process.stderr.write(`\r\x1b[2K${text}`);
    else process.stderr.write(`${text}\n`);
  };
  write(`${label}: starting`);
  return {
    /** A new stage of the same run, e.g. the capacity probe before an open-loop run. */
    stage(text: string): void {
      write(`${label}: ${text}`);
    },
    update(progress: LoadProgress): void {
      const rate = Math.round(progress.recentRate).toLocaleString('en-US');
      if (progress.phase === 'connect') {
        write(`${label}: connecting ${rate} connections`);
        return;
      }
      const total = progress.phase === 'warmup' ? `/${warmupSeconds}` : progress.phase === 'measure' ? `/${durationSeconds}` : '';
      write(`${label}: ${progress.phase} ${progress.elapsedSeconds.toFixed(0)}${total} s  ${rate} req/s`);
    },
    done(summary: string): void {
      write(`${label}: ${summary}`);
      if (tty) process.stderr.write('\n');
    },
  };
}
