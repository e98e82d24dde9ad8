/**
 * Which transports can run here, and why not. The transport selector calls
 * probeTransports() once at server start: `auto` picks the best available
 * transport and logs the reason for each one not taken; an explicit choice that
 * is unavailable fails with that reason.
 *
 * Core does not need @kmux/native to build: when the addon is missing or
 * failed to compile, the kernel transports are unavailable and say why, and the
 * user-space transport still works.
 */
import type { KernelProbe } from '@kmux/native';

export type TransportName = 'kcm' | 'sockmap' | 'native' | 'userspace';

/** Whether the kernel (as seen by this process, with its privileges) offers what a transport needs. */
export interface KernelSupport {
  supported: boolean;
  /** Why, in one line: the deciding system call and its errno when unsupported. */
  reason: string;
}

export interface TransportAvailability {
  /** kmux can use this transport here: the kernel (with this process's privileges) supports it. */
  available: boolean;
  /** One line for the log, e.g. "kernel 6.18 has no AF_KCM: socket(AF_KCM, …): EAFNOSUPPORT (…)". */
  reason: string;
  kernel: KernelSupport;
}

export interface TransportProbe {
  kcm: TransportAvailability;
  sockmap: TransportAvailability;
  native: TransportAvailability;
  userspace: TransportAvailability;
  /** The raw kernel probe from @kmux/native; null when the addon did not load. */
  kernel: KernelProbe | null;
  /** Whether @kmux/native loaded, and if not, why. */
  addon: { loaded: true } | { loaded: false; reason: string };
}

/**
 * Probes the kernel through @kmux/native (a few socket and bpf calls, a few
 * milliseconds) and tells, per transport, whether kmux can use it. Never throws.
 */
export async function probeTransports(): Promise<TransportProbe> {
  let native: typeof import('@kmux/native');
  try {
    native = await import('@kmux/native');
  } catch (err) {
    return transportsFrom({ loaded: false, reason: `cannot import @kmux/native: ${(err as Error).message}` });
  }
  const loaded = native.loadNative();
  if (!loaded.ok) return transportsFrom({ loaded: false, reason: loaded.reason });
  return transportsFrom({ loaded: true, kernel: loaded.binding.probeKernel() });
}

/** The decision itself, from a kernel probe or the reason there is none. */
export function transportsFrom(
  probe: { loaded: true; kernel: KernelProbe } | { loaded: false; reason: string },
): TransportProbe {
  if (!probe.loaded) {
    const noAddon: KernelSupport = { supported: false, reason: `native addon not loaded: ${probe.reason}` };
    return {
      kcm: availability(noAddon),
      sockmap: availability(noAddon),
      native: availability(noAddon),
      userspace: availability(userspaceSupport),
      kernel: null,
      addon: { loaded: false, reason: probe.reason },
    };
  }
  const { kernel } = probe;
  return {
    kcm: availability(kcmSupport(kernel)),
    sockmap: availability(sockmapSupport(kernel)),
    native: availability(nativeSupport),
    userspace: availability(userspaceSupport),
    kernel,
    addon: { loaded: true },
  };
}

const userspaceSupport: KernelSupport = { supported: true, reason: 'user-space framing needs only TCP sockets' };
/** The native transport's I/O thread needs only TCP, unix socketpairs and epoll: the addon loading is enough. */
const nativeSupport: KernelSupport = { supported: true, reason: 'the native I/O thread needs only TCP, unix socketpairs and epoll' };

/** KCM needs AF_KCM sockets and TCP sockets attached to them with a BPF framing program. */
function kcmSupport(kernel: KernelProbe): KernelSupport {
  if (!kernel.kcm.ok) return { supported: false, reason: `kernel ${kernel.release} has no AF_KCM: ${kernel.kcm.reason}` };
  if (!kernel.kcmAttach.ok) {
    return { supported: false, reason: `AF_KCM exists but a TCP socket cannot be attached: ${kernel.kcmAttach.reason}` };
  }
  return { supported: true, reason: `kernel ${kernel.release} supports AF_KCM with BPF framing programs` };
}

/** sockmap framing needs the map, a stream parser attached to it, and TCP sockets inserted. */
function sockmapSupport(kernel: KernelProbe): KernelSupport {
  const { map, streamParser, insertTcp } = kernel.sockmap;
  const failed = [map, streamParser, insertTcp].find((check) => !check.ok);
  if (failed) return { supported: false, reason: `sockmap unusable on kernel ${kernel.release}: ${failed.reason}` };
  return { supported: true, reason: `kernel ${kernel.release} supports sockmap with a BPF stream parser` };
}

function availability(kernel: KernelSupport): TransportAvailability {
  return { available: kernel.supported, reason: kernel.reason, kernel };
}
