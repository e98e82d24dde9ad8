import type { NativeKtls } from './binding.js';
import { requireNative } from './load-native.js';

/**
 * The kTLS record layer (native/ktls.cc, native/fd_poll.cc): synchronous,
 * non-blocking fd calls plus a readiness poll. Every failure is thrown as a
 * SysError (errors.ts) whose `syscall` names the call, e.g.
 * "setsockopt(SOL_TLS, TLS_RX)", and whose `code` is the errno ("EBUSY").
 */

export const TLS_1_2_VERSION = 0x0303;
export const TLS_1_3_VERSION = 0x0304;

/** TLS record content types (RFC 8446 §5.1). */
export const RecordType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
} as const;

/** Poll event bits (libuv's). */
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;
export const POLL_DISCONNECT = 4;

/** The kTLS functions of the addon; throws with loadNative()'s reason when it is not built. */
export function nativeKtls(): NativeKtls {
  return requireNative().ktls;
}
