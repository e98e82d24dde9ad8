// A bench (or a test) that dies without closing its peers must not leave them serving: each
// peer closes itself when its IPC channel to the bench goes away (peers/peer-process.ts).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';

const FIXTURE = new URL('./fixtures/start-peer-and-wait.mjs', import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a peer whose bench is killed', () => {
  it.each(['stock', 'kmux-userspace'])('%s closes its port and exits', async (name) => {
    const bench = spawn(process.execPath, [FIXTURE, name], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(createInterface({ input: bench.stdout! }), 'line')) as [string];
    const peer = JSON.parse(line) as { pid: number; port: number };
    expect(alive(peer.pid)).toBe(true);

    bench.kill('SIGKILL');
    await once(bench, 'exit');
    const deadline = Date.now() + 10_000;
    while (alive(peer.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    try {
      expect(alive(peer.pid), `peer ${name} (pid ${peer.pid}) outlived its bench`).toBe(false);
    } finally {
      if (alive(peer.pid)) process.kill(peer.pid, 'SIGKILL');
    }
    const socket = connect({ host: '127.0.0.1', port: peer.port });
    await expect(new Promise((resolve, reject) => socket.on('connect', resolve).on('error', reject))).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });
});
