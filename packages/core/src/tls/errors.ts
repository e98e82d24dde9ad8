import { KmuxError } from '../errors.js';
import { alertName } from './alerts.js';

/**
 * Why a kTLS connection ended other than cleanly. `reason` is the stats key the
 * server counts it under; `code` is stable for programs.
 */
export type KtlsCloseReason =
  /** recvmsg gave EBADMSG: a record failed authentication (tampered, or wrong keys). */
  | 'bad_record'
  /** The peer sent a fatal alert. */
  | 'peer_alert'
  /** The peer sent a TLS 1.3 KeyUpdate and kTLS could not take the new keys. */
  | 'key_update'
  /** A record or handshake message that has no place after the handshake. */
  | 'protocol'
  /** Any other failed system call on the socket (ECONNRESET, EPIPE, ...). */
  | 'socket_error';

export class KtlsError extends Error {
  constructor(
    readonly reason: KtlsCloseReason,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KtlsError';
  }
}

export function peerAlertError(level: number, description: number): KtlsError {
  return new KtlsError(
    'peer_alert',
    'ERR_TLS_ALERT',
    `the peer sent a ${level === 2 ? 'fatal' : 'level ' + level} TLS alert: ${alertName(description)} (${description})`,
  );
}

/** `ktls: 'require'` on a kernel without kTLS: listen() fails with the probe's reason. */
export class KtlsUnavailableError extends KmuxError {
  override readonly name = 'KtlsUnavailableError';
  constructor(readonly reason: string) {
    super('transport_unavailable', `kTLS is required but unavailable: ${reason}`);
  }
}
