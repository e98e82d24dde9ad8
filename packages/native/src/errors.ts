/**
 * A failed system call, shaped like Node's own errors: `code` is the errno's
 * name ("EPIPE", "EMSGSIZE"), `syscall` names the call ("ioctl(SIOCKCMATTACH)").
 * The message is "<syscall>: <code> (<strerror>)".
 */
export interface SysError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/**
 * Why a kernel-framed connection ended (see `KcmMuxOptions.onHangup`,
 * `Sockmap.add`): a SysError, or code "EOF" (errno 0) for a peer FIN that left
 * no error on the socket. KCM reports a FIN as EPIPE; a parser that met a
 * length above maxFrameBytes as EMSGSIZE; a parser that lost track as EPROTO.
 * When the socket's error was taken before it could be read (KCM's transmit takes
 * the FIN's EPIPE), TCP's state stands in: EPIPE in CLOSE_WAIT, ECONNRESET in CLOSE,
 * else EBADF (libuv's code for any poll error).
 */
export type HangupError = SysError;

export function isSysError(value: unknown): value is SysError {
  return value instanceof Error && typeof (value as SysError).code === 'string' && typeof (value as SysError).errno === 'number';
}
