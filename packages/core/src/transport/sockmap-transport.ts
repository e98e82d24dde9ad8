import { createSockmap } from '@kmux/native';
import type { KernelPath } from './kernel-path.js';

/** Map capacity: connections beyond it are refused when added. */
const MAX_CAPACITY = 65_536;

/**
 * sockmap: one map set per server. A BPF stream parser splits each connection and a
 * verdict spreads its frames round-robin over the connection's own targets, one unix
 * socket per worker, which the worker re-splits. Replies go straight to the TCP socket
 * from the workers, under the connection's shared write lock (scheduler/reply-writer.ts).
 */
export function sockmapPath(options: { maxFrameBytes: number; workers: number; maxConnections: number }): KernelPath {
  const sockmap = createSockmap({
    maxFrameBytes: options.maxFrameBytes,
    workers: options.workers,
    capacity: Math.min(options.maxConnections, MAX_CAPACITY),
  });
  return {
    name: 'sockmap',
    survivesWorkerDeath: false,
    open(tcpFd, onHangup) {
      const connection = sockmap.add(tcpFd, onHangup);
      return { readFds: connection.fds, replyFds: connection.fds.map(() => tcpFd), close: () => connection.remove() };
    },
    kernelStats: () => undefined,
    close: () => sockmap.close(),
  };
}
