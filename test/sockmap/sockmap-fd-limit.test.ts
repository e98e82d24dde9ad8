// sockmap costs a dup and a socketpair per worker for every connection, so it takes at most
// a third of the fd limit; connections past that (or past an EMFILE) are served in user space
// instead of dropped: counted, and warned about once.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HANDLERS } from '../../packages/core/test/helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures-fd-limit.mjs', import.meta.url));
const CLIENTS = 60;

describe('sockmap out of file descriptors', () => {
  it('serves the connections it cannot set up in user space, warning once', () => {
    // The clients live in the same process. 60 connections would need ~420 fds on sockmap
    // with 2 workers (client, accepted socket, its dup, 2 socketpairs); with sockmap capped at
    // 26 of them (a third of 400 over 5 per connection), 400 is enough for all.
    const output = execFileSync('bash', ['-c', `ulimit -n 400 && exec "${process.execPath}" "$@"`, 'bash', FIXTURE, HANDLERS, String(CLIENTS)], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const result = JSON.parse(output.trim().split('\n').at(-1)!) as {
      answered: number;
      fallbacks: number;
      connectionErrors: Record<string, number>;
      warnings: string[];
    };
    expect(result.answered).toBe(CLIENTS);
    expect(result.fallbacks).toBeGreaterThan(0);
    expect(result.connectionErrors.kernel_setup ?? 0).toBe(0);
    expect(result.warnings.filter((line) => line.includes('sockmap is full'))).toHaveLength(1);
  });
});
