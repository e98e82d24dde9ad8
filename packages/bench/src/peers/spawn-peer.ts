import { fork } from 'node:child_process';
import { once } from 'node:events';
import type { PeerCloseRequest, PeerMessage, PeerSettings } from './peer-messages.js';

/** The servers the bench compares; each runs from its own entry module in a child process. */
export const PEERS = {
  stock: { title: 'thrift (stock)', entry: new URL('./stock-thrift-peer.js', import.meta.url) },
  kmux: { title: 'kmux', entry: new URL('./kmux-peer.js', import.meta.url) },
} as const;

export type PeerName = keyof typeof PEERS;

export interface RunningPeer {
  readonly name: PeerName;
  readonly pid: number;
  readonly port: number;
  readonly transport: string | null;
  /** Stops the server process; resolves with its per-worker request counts (or null). */
  close(): Promise<number[] | null>;
}

export interface StartPeerOptions extends PeerSettings {
  /** Write a V8 CPU profile of every thread of the peer into this directory. */
  readonly cpuProfileDir?: string;
}

export async function startPeer(name: PeerName, options: StartPeerOptions): Promise<RunningPeer> {
  const settings: PeerSettings = { workers: options.workers, transport: options.transport };
  const execArgv = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [];
  const child = fork(PEERS[name].entry, [JSON.stringify(settings)], { execArgv, stdio: 'inherit' });
  const exited = once(child, 'exit');
  const [ready] = (await Promise.race([
    once(child, 'message'),
    exited.then(([code]) => {
      throw new Error(`peer ${name} exited during start (code ${code})`);
    }),
  ])) as [PeerMessage];
  if (ready.type !== 'ready') throw new Error(`peer ${name} sent ${ready.type} before ready`);

  return {
    name,
    pid: child.pid!,
    port: ready.port,
    transport: ready.transport,
    async close() {
      // A peer that crashed mid-run has nothing left to report.
      if (child.exitCode !== null || child.signalCode !== null) return null;
      const reply = once(child, 'message') as Promise<[PeerMessage]>;
      child.send({ type: 'close' } satisfies PeerCloseRequest);
      const [message] = await Promise.race([reply, exited.then(() => [null] as const)]);
      await exited;
      return message?.type === 'closed' ? message.workerRequests : null;
    },
  };
}
