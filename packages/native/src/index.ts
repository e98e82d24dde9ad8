import type { KernelProbe, SyscallCheck } from './kernel-probe.js';
import { loadNative, requireNative } from './load-native.js';

export type { KernelProbe, SyscallCheck, TlsCipher } from './kernel-probe.js';
export type { KtlsCryptoParams, NativeBinding, NativeFdPoll, NativeKtls, RecvResult, SockmapEntries, TlsVersionCode, NativeTlsEvent, MethodNameFormat } from './binding.js';
export { loadNative, type NativeLoadResult } from './load-native.js';
export { isSysError, type HangupError, type SysError } from './errors.js';
export { MessageWatcher, forEachMessage, type MessageWatcherOptions } from './message-watcher.js';
export { PollGroup } from './poll-group.js';
export { framesInAll, type FrameTally } from './frame-tally.js';
export { createKcmMux, type KcmMux, type KcmMuxOptions } from './kcm-mux.js';
export { NativeMux, NO_REPLY, type NativeMuxOptions, type NativeConnection, type NativeTlsOptions, type LostRequests } from './native-mux.js';
export { createSockmap, type Sockmap, type SockmapConnection, type SockmapOptions } from './sockmap.js';
export {
  nativeKtls,
  RecordType,
  TLS_1_2_VERSION,
  TLS_1_3_VERSION,
  POLL_READABLE,
  POLL_WRITABLE,
  POLL_DISCONNECT,
} from './ktls.js';

/**
 * Probes the running kernel (KCM, kTLS per cipher, BPF, sockmap, capabilities).
 * Throws when the addon is not loaded, with loadNative()'s reason.
 */
export function probeKernel(): KernelProbe {
  return requireNative().probeKernel();
}

/**
 * Bounds how long the kernel stream parser (KCM, sockmap) of TCP socket `fd` may hold a
 * partial message: past `ms` from its first byte, the parser aborts and the socket reports
 * ETIMEDOUT (SO_RCVTIMEO, which strparser uses as its message timeout). The socket must not
 * be read with blocking calls, whose timeout this also sets.
 */
export function setFrameTimeout(fd: number, ms: number): void {
  requireNative().setFrameTimeout(fd, ms);
}

/**
 * Asks the kernel for a `us` µs time slice (EEVDF, Linux ≥ 6.12, 100 µs at the least,
 * unprivileged) for the calling thread: a thread with a short slice preempts a running CPU
 * hog on wakeup sooner. Never throws: the check says whether the kernel took it, or why not
 * (no addon, an older kernel that ignores the slice, a real-time policy).
 */
export function setThreadSlice(us: number): SyscallCheck {
  const native = loadNative();
  if (!native.ok) return { ok: false, errno: 0, code: null, reason: `@kmux/native: ${native.reason}` };
  return native.binding.setThreadSlice(us);
}

/**
 * Makes `cells[index]` (an Int32Array, usually over a SharedArrayBuffer) read 1 while the
 * calling thread's V8 heap is in a stop-the-world GC pause and 0 otherwise, so another thread
 * can tell a thread that is idle from one that cannot run JS for the next few ms. One watch
 * per thread (a second call replaces the first); it ends with the thread. Returns false,
 * watching nothing, when the addon is not loaded.
 */
export function watchGcPauses(cells: Int32Array, index: number): boolean {
  const native = loadNative();
  if (!native.ok) return false;
  native.binding.watchGcPauses(cells, index);
  return true;
}
