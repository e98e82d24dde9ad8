// A worker thread that dies while it watches fds: nothing it read may vanish with it, and
// nothing it throws may take the process down.
import { spawnSync } from 'node:child_process';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { tcpPair } from './frames.js';

const CONNECTIONS = 8;
const FRAME = 16;
const burst = Buffer.concat(
  Array.from({ length: 256 }, () => {
    const frame = Buffer.alloc(FRAME);
    frame.writeUInt32BE(FRAME - 4);
    return frame;
  }),
);

/** Bytes that arrive on a paused socket once it is read, until it has been quiet for `quietMs`. */
function drain(socket: net.Socket, quietMs = 100): Promise<number> {
  return new Promise((resolve) => {
    let bytes = 0;
    let timer = setTimeout(() => resolve(bytes), quietMs);
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      clearTimeout(timer);
      timer = setTimeout(() => resolve(bytes), quietMs);
    });
    socket.resume();
  });
}

describe('a worker that dies while watching', () => {
  it('leaves unread what it can no longer deliver: out of heap, mid loop turn, no byte of 8 busy sockets is lost', { timeout: 60_000 }, async () => {
    // Without the JsCanRun() check in message_watcher.cc every watcher with data pending in the
    // dying loop turn read one more batch into the dead thread: up to 128 KiB per socket, here.
    for (let round = 0; round < 4; round++) {
      const pairs = await Promise.all(Array.from({ length: CONNECTIONS }, tcpPair));
      const clients = pairs.map((pair) => pair.client);
      try {
        // 64-bit: a fast machine moves more than 2 GiB through one socket before the thread dies.
        const delivered = new BigInt64Array(new SharedArrayBuffer(8 * CONNECTIONS));
        const die = new Int32Array(new SharedArrayBuffer(4));
        const worker = new Worker(new URL('./fixtures/watch-until-oom.mjs', import.meta.url), {
          resourceLimits: { maxOldGenerationSizeMb: 32 },
          workerData: { fds: pairs.map((pair) => pair.serverFd), delivered: delivered.buffer, die: die.buffer },
        });
        const ended = new Promise<string>((resolve) => {
          worker.once('error', (error: NodeJS.ErrnoException) => resolve(String(error.code)));
          worker.once('exit', (code) => resolve(`exit ${code}`));
        });
        await new Promise((resolve) => worker.once('message', resolve));
        let writing = true;
        const pump = (client: net.Socket): void => {
          while (writing && client.write(burst));
          if (writing) client.once('drain', () => pump(client));
        };
        clients.forEach(pump);
        await new Promise((resolve) => setTimeout(resolve, 30));
        Atomics.store(die, 0, 1);
        expect(await ended).toBe('ERR_WORKER_OUT_OF_MEMORY');
        writing = false;
        const left = await Promise.all(pairs.map((pair) => drain(pair.server)));
        // A stream watcher keeps a partial frame between reads: at most that may go with it.
        const lost = clients.map((client, i) => client.bytesWritten - Number(delivered[i]!) - left[i]!);
        expect(lost.filter((bytes) => bytes >= FRAME), `bytes lost per socket: ${lost.join(', ')}`).toEqual([]);
      } finally {
        for (const pair of pairs) pair.close();
      }
    }
  });

  it('survives worker threads terminated while native calls throw', () => {
    // Without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS (binding.gyp) this aborted the process
    // within 1 to 3 rounds: the server's close terminates workers that may be mid-send.
    const fixture = fileURLToPath(new URL('./fixtures/terminate-while-throwing.mjs', import.meta.url));
    const run = spawnSync(process.execPath, [fixture, '40'], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(run.stdout).toContain('terminated 40 throwing workers');
  });
});
