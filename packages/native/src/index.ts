import type { KernelProbe } from './kernel-probe.js';
import { loadNative } from './load-native.js';

export type { KernelProbe, NativeBinding, SyscallCheck, TlsCipher } from './kernel-probe.js';
export { loadNative, type NativeLoadResult } from './load-native.js';

/**
 * Probes the running kernel (KCM, kTLS per cipher, BPF, sockmap, capabilities).
 * Throws when the addon is not loaded, with loadNative()'s reason.
 */
export function probeKernel(): KernelProbe {
  const native = loadNative();
  if (!native.ok) throw new Error(`@kmux/native: ${native.reason}`);
  return native.binding.probeKernel();
}
