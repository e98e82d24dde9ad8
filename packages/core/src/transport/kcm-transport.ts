import { createKcmMux } from '@kmux/native';
import { readKcmProcStats } from '../stats/kcm-proc.js';
import type { KernelPath } from './kernel-path.js';

/**
 * KCM: one mux per connection (a mux sends each message on any of its attached TCP
 * sockets, so connections cannot share one) with one KCM socket per worker. The kernel's
 * BPF parser splits the stream, hands each whole request to whichever worker's socket is
 * reading, and sends each reply whole on the connection, so workers need no lock.
 */
export function kcmPath(options: { maxFrameBytes: number; workers: number }): KernelPath {
  return {
    name: 'kcm',
    survivesWorkerDeath: true,
    spread: 'any',
    ktls: false,
    open(tcpFd, onHangup) {
      const mux = createKcmMux(tcpFd, { maxFrameBytes: options.maxFrameBytes, sockets: options.workers, onHangup });
      return {
        readFds: mux.fds,
        replyFds: mux.fds,
        framed: () => mux.framed(),
        unsent: () => mux.unsent(),
        restartTransmit: () => mux.restartTransmit(),
        parserError: () => mux.parserError(),
        close: () => mux.close(),
      };
    },
    kernelStats() {
      const kcm = readKcmProcStats();
      return kcm ? { kcm } : undefined;
    },
    close() {},
  };
}
