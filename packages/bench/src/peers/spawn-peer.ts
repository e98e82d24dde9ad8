import { fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { probeTransports, type TransportName } from '@kmux/core';
import type { PeerCloseRequest, PeerMessage, PeerProtocol, PeerSettings } from './peer-messages.js';

/** What the bench needs to know about a server before starting it. */
export interface PeerSpec {
  readonly title: string;
  /** The child process's entry module. */
  readonly entry: URL;
  /** What a load generator must speak to it. */
  readonly protocol: PeerProtocol;
  /** Serves `echo` only (the C server): for echo scenarios, not handler ones. */
  readonly echoOnly?: boolean;
  /** kmux's transport for this peer; kmux peers without one take the --transport setting. */
  readonly transport?: TransportName;
}

/** The C epoll echo server the `c-echo` peer runs (built by `make -C packages/bench/native`). */
export const C_ECHO_SERVER = fileURLToPath(new URL('../../native/build/thrift-echo-server', import.meta.url));

const entry = (module: string) => new URL(module, import.meta.url);
const THRIFT = 'thrift-binary-framed';

/** The servers the bench compares; each runs from its own entry module in a child process. */
export const PEERS = {
  stock: { title: 'thrift (stock)', entry: entry('./stock-thrift-peer.js'), protocol: THRIFT },
  piscina: { title: 'thrift + piscina', entry: entry('./piscina-peer.js'), protocol: THRIFT },
  'c-echo': { title: 'C epoll (echo only)', entry: entry('./c-echo-peer.js'), protocol: THRIFT, echoOnly: true },
  kmux: { title: 'kmux', entry: entry('./kmux-peer.js'), protocol: THRIFT },
  'kmux-userspace': { title: 'kmux userspace', entry: entry('./kmux-peer.js'), protocol: THRIFT, transport: 'userspace' },
  'kmux-native': { title: 'kmux native', entry: entry('./kmux-peer.js'), protocol: THRIFT, transport: 'native' },
  'kmux-sockmap': { title: 'kmux sockmap', entry: entry('./kmux-peer.js'), protocol: THRIFT, transport: 'sockmap' },
  'kmux-kcm': { title: 'kmux kcm', entry: entry('./kmux-peer.js'), protocol: THRIFT, transport: 'kcm' },
  'kmux-protobuf': { title: 'kmux protobuf', entry: entry('./kmux-protobuf-peer.js'), protocol: 'kmux-protobuf' },
  grpc: { title: 'grpc-js', entry: entry('./grpc-peer.js'), protocol: 'grpc' },
} as const satisfies Record<string, PeerSpec>;

export type PeerName = keyof typeof PEERS;

/** Why `name` cannot run on this machine (its kmux transport, the C server unbuilt), or null. */
export async function peerUnavailable(name: PeerName): Promise<string | null> {
  const spec: PeerSpec = PEERS[name];
  if (name === 'c-echo' && !existsSync(C_ECHO_SERVER)) return `${C_ECHO_SERVER} is not built`;
  if (spec.transport === undefined) return null;
  const { available, reason } = (await probeTransports())[spec.transport];
  return available ? null : `transport ${spec.transport}: ${reason}`;
}

export interface RunningPeer {
  readonly name: PeerName;
  /** The process serving the port, for its CPU and RSS. */
  readonly pid: number;
  readonly port: number;
  readonly transport: string | null;
  readonly protocol: PeerProtocol;
  /** Stops the server process; resolves with its per-worker request counts (or null). */
  close(): Promise<number[] | null>;
}

export interface StartPeerOptions extends PeerSettings {
  /** Write a V8 CPU profile of every thread of the peer into this directory. */
  readonly cpuProfileDir?: string;
}

export async function startPeer(name: PeerName, options: StartPeerOptions): Promise<RunningPeer> {
  const spec: PeerSpec = PEERS[name];
  const settings: PeerSettings = { workers: options.workers, transport: spec.transport ?? options.transport, kmuxOptions: options.kmuxOptions };
  const execArgv = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [];
  const child = fork(spec.entry, [JSON.stringify(settings)], { execArgv, stdio: 'inherit' });
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
    pid: ready.pid ?? child.pid!,
    port: ready.port,
    transport: ready.transport,
    protocol: ready.protocol ?? spec.protocol,
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
