import type { WorkerPool } from '../scheduler/worker-pool.js';
import type { ResolvedServerOptions } from '../server/options.js';
import type { TlsReport } from '../tls/server-tls.js';
import { kcmPath } from './kcm-transport.js';
import { KernelTransport } from './kernel-transport.js';
import { nativePath } from './native-transport.js';
import type { TransportConstraints, TransportName } from './select.js';
import { SOCKMAP_MAX_FRAME_BYTES, sockmapPath } from './sockmap-transport.js';
import type { ServerTransport, TransportContext } from './transport.js';
import { UserspaceTransport } from './userspace-transport.js';

/**
 * Why this server cannot use the worker-read transports (KCM, sockmap, native), whatever the
 * kernel offers. `tls`: how a TLS server runs its records (decided before the transport).
 */
export function transportConstraints(options: ResolvedServerOptions, pool: WorkerPool, tls: TlsReport | null = null): TransportConstraints {
  const constraints = framingConstraints(options, pool, tls);
  if (constraints.native || options.slowMethods.length === 0 || options.codec.methodNames) return constraints;
  return { ...constraints, native: `codec ${options.codec.name} does not say where requests name their method (methodNames): native cannot apply slowMethods` };
}

function framingConstraints(options: ResolvedServerOptions, pool: WorkerPool, tls: TlsReport | null): TransportConstraints {
  if (tls) {
    // Measured on 6.1 and 6.12 (DESIGN.md, src/tls/README.md): KCM cannot read through kTLS
    // without losing or corrupting frames, and sockmap's parser sees records, not frames.
    const kernel = 'KCM and sockmap cannot frame through kTLS: TLS connections are framed in user space or on native';
    const native = tls.ktls ? undefined : `TLS records stay in user space (${tls.reason}): native reads only kTLS sockets`;
    return { kcm: kernel, sockmap: kernel, ...(native && { native }), ...(pool.kernelUnsupported && { native: `codec ${options.codec.name} ${pool.kernelUnsupported}` }) };
  }
  if (pool.kernelUnsupported) {
    const reason = `codec ${options.codec.name} ${pool.kernelUnsupported}`;
    return { kcm: reason, sockmap: reason, native: reason };
  }
  if (options.maxFrameBytes > SOCKMAP_MAX_FRAME_BYTES) {
    return { sockmap: `maxFrameBytes ${options.maxFrameBytes} is above the ${SOCKMAP_MAX_FRAME_BYTES} bytes sockmap can deliver whole (SOCKMAP_MAX_FRAME_BYTES)` };
  }
  return {};
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
    case 'native':
      return new KernelTransport(context, nativePath(options, context.pool.clocks));
  }
}
