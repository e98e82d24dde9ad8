import { NativeMux, type HangupError } from '@kmux/native';
import type { ResolvedServerOptions } from '../server/options.js';
import type { WorkerClocks } from '../scheduler/worker-clocks.js';
import type { KernelBinding, KernelPath } from './kernel-path.js';
import { NativeTlsSession } from './native-tls.js';

/**
 * native: the addon's I/O thread owns each connection's TCP socket; it splits frames under
 * the limits and hands each to a worker through a unix stream pair per (connection, worker),
 * which the worker reads like a sockmap target and answers on (native/io_loop.h). It writes
 * the replies whole, so the main thread sees only accepts and hangups. It knows which
 * requests each worker holds, so a dead worker's requests are answered worker_died and its
 * connections live on.
 */
export function nativePath(options: ResolvedServerOptions, clocks: WorkerClocks): KernelPath {
  let shed: (binding: KernelBinding, heads: readonly Buffer[]) => void = () => {};
  // transportConstraints keeps a server with slowMethods off native when its codec lacks these.
  const { methodNames } = options.codec;
  const mux = new NativeMux({
    workers: options.workers,
    maxFrameBytes: options.maxFrameBytes,
    frameTimeoutMs: options.frameTimeoutMs,
    maxBufferedBytes: options.maxBufferedBytes,
    workerQueueDepth: options.workerQueueDepth,
    maxInFlight: options.maxInFlight,
    maxInFlightPerConnection: options.maxInFlightPerConnection,
    maxPendingWriteBytes: options.maxPendingWriteBytes,
    busyWorkerGraceUs: options.busyWorkerGraceUs,
    workerBacklogUs: options.workerBacklogUs,
    gcPauses: clocks.gcPauses,
    slowLane: methodNames && {
      format: methodNames.format,
      methods: options.slowMethods.flatMap((method) => methodNames.onWire(method)),
      workers: options.slowWorkers,
    },
    onShed: (connection, heads) => {
      const binding = bindings.get(connection.id);
      if (binding) shed(binding, heads);
    },
  });
  const bindings = new Map<number, KernelBinding>();
  return {
    name: 'native',
    survivesWorkerDeath: true,
    spread: 'any',
    ktls: true,
    open(tcpFd, onHangup, ktls) {
      const tls = ktls ? new NativeTlsSession(ktls, onHangup) : undefined;
      const ended = tls
        ? (error: HangupError) => {
            tls.ended(error);
            onHangup(error);
          }
        : onHangup;
      const connection = mux.add(tcpFd, ended, tls);
      tls?.attach(connection);
      const slots = [...Array(options.workers).keys()];
      const binding: KernelBinding = {
        get readFds() {
          return slots.map((slot) => connection.workerFd(slot));
        },
        get replyFds() {
          return this.readFds;
        },
        // The I/O thread reports the FIN only once every frame is in a worker's pair: the workers
        // need no count (received -1 makes framesInAll 'unknown').
        framed: () => ({ ...connection.counts(), end: 0, received: -1 }),
        unsent: () => connection.unsent(),
        reply: (frame) => connection.reply(frame),
        detached: (slot) => connection.detached(slot),
        closeCause: () => tls?.cause() ?? null,
        close: () => {
          bindings.delete(connection.id);
          connection.close();
        },
      };
      bindings.set(connection.id, binding);
      return binding;
    },
    takeWorker(slot) {
      const lost = new Map<KernelBinding, readonly Buffer[]>();
      for (const { connection, heads } of mux.takeWorker(slot)) {
        const binding = bindings.get(connection.id);
        if (binding) lost.set(binding, heads);
      }
      return lost;
    },
    workerReady: (slot) => mux.setAlive(slot),
    queued: () => mux.queued,
    onShed: (handler) => (shed = handler),
    kernelStats: () => undefined,
    close: () => mux.close(),
  };
}
