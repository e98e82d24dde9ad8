/**
 * The compiled addon's exports, as TypeScript sees them: the native classes and functions
 * the thin wrappers in this package (kcm-mux.ts, sockmap.ts, message-watcher.ts, poll-group.ts, ktls.ts)
 * build on. Types only, and a leaf: load-native.ts returns a NativeBinding and the wrappers
 * call load-native, so these must not live beside the wrappers (an import cycle).
 */
import type { HangupError, SysError } from './errors.js';
import type { FrameTally } from './frame-tally.js';
import type { KernelProbe, SyscallCheck, TlsCipher } from './kernel-probe.js';

/** The functions and classes the compiled addon exports. */
export interface NativeBinding {
  probeKernel(): KernelProbe;
  setFrameTimeout(fd: number, ms: number): void;
  setThreadSlice(us: number): SyscallCheck;
  watchGcPauses(cells: Int32Array, index: number): void;
  KcmMux: NativeKcmMuxClass;
  MessageWatcher: NativeMessageWatcherClass;
  NativeMux: NativeMuxClass;
  PollGroup: NativePollGroupClass;
  Sockmap: NativeSockmapClass;
  /** The kTLS record layer: enableKtls, recvRecord, sendRecord, FdPoll, ... (native/ktls.cc). */
  ktls: NativeKtls;
}

/**
 * How a request frame names its method, for the native transport's I/O thread to read
 * (native/slow_methods.h): 'raw' (@kmux/core's raw codec), 'thrift-binary' and 'thrift-compact'
 * (a Thrift message, plain or inside a THeader), 'protobuf' (@kmux/protobuf's v1 envelope).
 */
export type MethodNameFormat = 'raw' | 'thrift-binary' | 'thrift-compact' | 'protobuf';

/** The native class behind createKcmMux (native/kcm_mux.cc). */
export interface NativeKcmMux {
  fds(): number[];
  close(): void;
  framed(): FrameTally;
  unsent(): number;
  restartTransmit(): boolean;
  parserError(): string | null;
}
export interface NativeKcmMuxClass {
  new (tcpFd: number, maxFrameBytes: number, sockets: number, onHangup: (error: HangupError) => void): NativeKcmMux;
}

/** The native class behind createSockmap (native/sockmap.cc). */
export interface NativeSockmap {
  add(tcpFd: number, onHangup: (error: HangupError) => void): { slot: number; fds: number[] };
  remove(slot: number): void;
  close(): void;
  entries(): SockmapEntries;
  framed(slot: number): FrameTally;
}

/** What the kernel's maps hold, as the kernel reports it (a lookup per slot ever used). */
export interface SockmapEntries {
  /** TCP sockets in the parser map. */
  readonly connections: number;
  /** Unix target sockets in the target map. */
  readonly targets: number;
  /** Per-connection parser states. */
  readonly states: number;
}
export interface NativeSockmapClass {
  new (maxFrameBytes: number, workers: number, capacity: number, targetRcvbufBytes: number): NativeSockmap;
}

/** The native class behind MessageWatcher (native/message_watcher.cc). */
export interface NativeMessageWatcher {
  send(parts: readonly Uint8Array[]): number;
  waitWritable(): void;
  pause(): void;
  resume(): void;
  flush(): number;
  close(): void;
}
export interface NativeMessageWatcherClass {
  new (
    fd: number,
    maxFrameBytes: number,
    batchBytes: number,
    batchMessages: number,
    onMessages: (data: Buffer, offsets: Uint32Array) => void,
    onClose: (error: SysError | undefined) => void,
    onWritable: () => void,
    group: NativePollGroup | undefined,
  ): NativeMessageWatcher;
}

/** The native class behind PollGroup (native/poll_group.cc). */
export interface NativePollGroup {
  pause(): void;
  resume(): void;
  close(): void;
}
export type NativePollGroupClass = new () => NativePollGroup;

/** TLS_1_2_VERSION or TLS_1_3_VERSION (ktls.ts). */
export type TlsVersionCode = 0x0303 | 0x0304;

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
  /** Whether TCP_NODELAY is set. */
  noDelay(fd: number): boolean;
  /** ioctl(SIOCOUTQ): bytes written that the peer has not acknowledged yet. */
  unackedBytes(fd: number): number;
  FdPoll: new (fd: number, onEvent: (error: Error | null, events: number) => void) => NativeFdPoll;
}

/**
 * A kTLS connection's KeyUpdate steps, from the I/O thread: the peer's KeyUpdate parked reading
 * (`key_update_requested`: it asks for ours too); the records or bytes allowed under our key were
 * sent (`tx_due`); our KeyUpdate record is out and writing parked.
 */
export type NativeTlsEvent = 'key_update' | 'key_update_requested' | 'tx_due' | 'tx_parked';

/** The native class behind NativeMux (native/native_mux.cc). */
export interface NativeNativeMux {
  add(tcpFd: number, tls: boolean, tls13: boolean, keyUpdateRecords: number, keyUpdateBytes: number): number;
  workerFds(id: number): number[];
  counts(id: number): { parsed: number; refused: number; unsent: number };
  remove(id: number): void;
  reply(id: number, frame: Uint8Array): void;
  takeWorker(slot: number): { id: number; heads: Buffer[] }[];
  takeShed(): { id: number; heads: Buffer[] }[];
  detached(id: number, slot: number): Buffer[];
  queued(): number;
  setAlive(slot: number): void;
  resumeRead(id: number): void;
  endRead(id: number): void;
  keyUpdateTx(id: number, message: Uint8Array): void;
  resumeWrite(id: number): void;
  close(): void;
}
export interface NativeMuxClass {
  new (
    workers: number,
    maxFrameBytes: number,
    frameTimeoutMs: number,
    maxBufferedBytes: number,
    workerQueueDepth: number,
    maxInFlight: number,
    maxInFlightPerConnection: number,
    maxPendingWriteBytes: number,
    busyWorkerGraceUs: number,
    workerBacklogUs: number,
    onHangup: (id: number, error: HangupError | null, notice?: NativeTlsEvent | 'shed') => void,
    gcPauses: Int32Array | null,
    lanes: { workers: number; format: MethodNameFormat; names: readonly string[] } | null,
  ): NativeNativeMux;
}
