import { readFileSync } from 'node:fs';
import { createSockmap } from '@kmux/native';
import type { KernelPath } from './kernel-path.js';

/** Map capacity: connections beyond it are served in user space (kernel-transport.ts). */
const MAX_CAPACITY = 65_536;

/**
 * Connections sockmap may hold within this process's fd limit. Each costs a dup of its TCP
 * socket and a socketpair per worker on top of the socket itself; sockmap gets at most a third
 * of the limit, so that connections past it still have fds to be served in user space.
 */
function fdCapacity(workers: number): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
  if (soft === undefined || soft === 'unlimited') return MAX_CAPACITY;
  return Math.max(1, Math.floor(Number(soft) / 3 / (1 + 2 * workers)));
}

/**
 * The largest frame sockmap delivers, and its default maxFrameBytes. A redirected frame made
 * of more pieces than a scatterlist holds is linearized into one allocation, and the kernel
 * allocates at most 4 MiB at once (KMALLOC_MAX_SIZE on x86-64): a frame near that size is
 * never delivered and its connection hangs with no error (measured on 6.18: 4,190,000 bytes
 * served, 4,194,000 not). The allocation also holds the skb's bytes around the frame (up to
 * a received segment on each side, 64 KiB on loopback, more with GRO), hence the margin.
 */
export const SOCKMAP_MAX_FRAME_BYTES = 3 * 1024 * 1024;

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
    capacity: Math.min(options.maxConnections, MAX_CAPACITY, fdCapacity(options.workers)),
  });
  let closed = false;
  return {
    name: 'sockmap',
    survivesWorkerDeath: false,
    spread: 'round-robin',
    ktls: false,
    open(tcpFd, onHangup) {
      const connection = sockmap.add(tcpFd, onHangup);
      return {
        readFds: connection.fds,
        replyFds: connection.fds.map(() => tcpFd),
        framed: () => connection.framed(),
        // Workers send replies on the TCP socket itself, which keeps what it queued when closed.
        unsent: () => 0,
        close: () => connection.remove(),
      };
    },
    // What the kernel's maps hold (one lookup per slot ever used): zeros once all is released.
    kernelStats: () => (closed ? undefined : { sockmap: sockmap.entries() }),
    close() {
      closed = true;
      sockmap.close();
    },
  };
}
