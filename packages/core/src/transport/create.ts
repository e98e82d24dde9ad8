import type { WorkerPool } from '../scheduler/worker-pool.js';
import type { ResolvedServerOptions } from '../server/options.js';
import { kcmPath } from './kcm-transport.js';
import { KernelTransport } from './kernel-transport.js';
import type { TransportConstraints, TransportName } from './select.js';
import { sockmapPath } from './sockmap-transport.js';
import type { ServerTransport, TransportContext } from './transport.js';
import { UserspaceTransport } from './userspace-transport.js';

/** Why this server cannot use the kernel transports, whatever the kernel offers. */
export function transportConstraints(options: ResolvedServerOptions, pool: WorkerPool): TransportConstraints {
  let reason: string | null = null;
  if (options.tls) reason = 'TLS needs user-space framing until kTLS lands';
  else if (pool.kernelUnsupported) reason = `codec ${options.codec.name} ${pool.kernelUnsupported}`;
  return reason ? { kcm: reason, sockmap: reason } : {};
}

export function createTransport(name: TransportName, context: TransportContext): ServerTransport {
  const { options } = context;
  switch (name) {
    case 'userspace':
      return new UserspaceTransport(context);
    case 'kcm':
      return new KernelTransport(context, kcmPath(options));
    case 'sockmap':
      return new KernelTransport(context, sockmapPath(options));
  }
}
