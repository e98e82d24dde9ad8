import type { TlsCipher } from './kernel-probe.js';
import { requireNative } from './load-native.js';

/**
 * The kTLS record layer (native/ktls.cc, native/fd_poll.cc): synchronous,
 * non-blocking fd calls plus a readiness poll. Every failure is thrown as a
 * SysError (errors.ts) whose `syscall` names the call, e.g.
 * "setsockopt(SOL_TLS, TLS_RX)", and whose `code` is the errno ("EBUSY").
 */

export const TLS_1_2_VERSION = 0x0303;
export const TLS_1_3_VERSION = 0x0304;
export type TlsVersionCode = typeof TLS_1_2_VERSION | typeof TLS_1_3_VERSION;

/** TLS record content types (RFC 8446 §5.1). */
export const RecordType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
} as const;

export interface KtlsCryptoParams {
  direction: 'tx' | 'rx';
  version: TlsVersionCode;
  cipher: TlsCipher;
  /** 16 bytes (aes-gcm-128) or 32. Zeroed by the call. */
  key: Uint8Array;
  /**
   * AES-GCM: 8 bytes (TLS 1.3: the last 8 of the 12-byte write iv; TLS 1.2: the
   * first explicit nonce to send). ChaCha20-Poly1305: the whole 12-byte iv. Zeroed by the call.
   */
  iv: Uint8Array;
  /** AES-GCM: 4 bytes (the first 4 of the iv, or TLS 1.2's implicit iv); ChaCha: empty. Zeroed by the call. */
  salt: Uint8Array;
  /** The sequence number of the next record in this direction, 8 bytes big-endian. */
  recSeq: Uint8Array;
}

export interface RecvResult {
  /** Bytes read; 0 at the end of the stream. */
  bytes: number;
  /** TLS content type of the record(s) read (kTLS RX only); null without a cmsg. */
  recordType: number | null;
}

/** Poll event bits (libuv's). */
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;
export const POLL_DISCONNECT = 4;

export interface NativeFdPoll {
  /** Arms the poll for these events (0 stops it). Level-triggered. */
  start(events: number): void;
  /** Stops for good; idempotent; the fd stays open. */
  close(): void;
}

export interface NativeKtls {
  /** TCP_ULP "tls" (once), then TLS_TX or TLS_RX. Zeroes key, iv and salt, and the kernel struct, on every outcome. */
  enableKtls(fd: number, params: KtlsCryptoParams): void;
  /** recvmsg with room for the record-type cmsg; null when nothing is ready (EAGAIN). */
  recvRecord(fd: number, buffer: Uint8Array): RecvResult | null;
  /** sendmsg with TLS_SET_RECORD_TYPE; bytes sent, or null when the socket is full (EAGAIN). */
  sendRecord(fd: number, buffer: Uint8Array, recordType: number): number | null;
  /** sendmsg; bytes sent, or null when the socket is full (EAGAIN). */
  send(fd: number, buffer: Uint8Array): number | null;
  /** fcntl(F_DUPFD_CLOEXEC). */
  dupFd(fd: number): number;
  closeFd(fd: number): void;
  shutdown(fd: number, how: 'read' | 'write' | 'both'): void;
  setNoDelay(fd: number, on: boolean): void;
  FdPoll: new (fd: number, onEvent: (error: Error | null, events: number) => void) => NativeFdPoll;
}

/** The kTLS functions of the addon; throws with loadNative()'s reason when it is not built. */
export function nativeKtls(): NativeKtls {
  return requireNative().ktls;
}
