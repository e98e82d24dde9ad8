/**
 * Peer child process: runs the C epoll server (native/thrift-echo-server.c, built by the
 * bench's build) with `workers` threads and reports its pid, so the bench measures the C
 * process, not this one. It answers Thrift `echo` only: this machine's ceiling for the
 * echo scenarios, not a server to run handlers.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { runPeer } from './peer-process.js';
import { C_ECHO_SERVER } from './spawn-peer.js';

runPeer(async ({ workers }) => {
  if (!existsSync(C_ECHO_SERVER)) throw new Error(`${C_ECHO_SERVER} is missing: run the bench's build (make -C packages/bench/native)`);
  const server = spawn(C_ECHO_SERVER, [String(workers)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(server, 'exit');
  const [line] = (await Promise.race([
    once(createInterface({ input: server.stdout }), 'line'),
    exited.then(([code]) => {
      throw new Error(`the C echo server exited during start (code ${code})`);
    }),
  ])) as [string];
  const port = Number(/^port (\d+)$/.exec(line)?.[1]);
  if (!(port > 0)) throw new Error(`the C echo server said '${line}', not its port`);
  return {
    port,
    transport: null,
    protocol: 'thrift-binary-framed',
    pid: server.pid,
    async close() {
      server.kill('SIGTERM');
      const [code, signal] = await exited;
      if (code !== 0) throw new Error(`the C echo server exited with code ${code}, signal ${signal}`);
      return null;
    },
  };
});
