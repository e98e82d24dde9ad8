import type { HangupError } from '@kmux/native';
import type { KtlsCloseReason } from '../tls/errors.js';
import { keyUpdateError } from '../tls/key-update.js';
import type { KtlsSocket } from '../tls/ktls-socket.js';
import type { Cause } from './attached-connection.js';

/** How the I/O thread's end codes read as a kTLS close reason (native/tls_records.h). */
const ERROR_REASONS: Readonly<Record<string, KtlsCloseReason>> = {
  EBADMSG: 'bad_record',
  ECONNABORTED: 'peer_alert',
  EPROTO: 'protocol',
};
/** The orderly ends (code EOF), by the I/O thread's `syscall`. */
const END_REASONS: Readonly<Record<string, 'close_notify' | 'eof' | 'key_update'>> = {
  close_notify: 'close_notify',
  eof: 'eof',
  key_update: 'key_update',
};
/** Why the native transport ends a connection at the peer's KeyUpdate on every kernel. */
export const NATIVE_NO_REKEY =
  'the native transport does not rekey in place (on Linux 7.3 a connection stalled under load after one); the requests read before it are answered, then it closes';

/**
 * A kTLS connection on the native transport. The I/O thread reads and writes its records; the
 * KtlsSocket it came from stays the owner of the fd (closed by destroy()) and of the counters
 * (its 'keyUpdateFailed' and 'close' events, counted by the handoff): this says how it ended.
 */
export class NativeTlsSession {
  readonly tls13: boolean;

  constructor(private readonly socket: KtlsSocket) {
    this.tls13 = socket.suite.version === 'TLSv1.3';
  }

  /** The connection ended (the I/O thread's hangup): why, as KtlsSocket would say. */
  ended(error: HangupError): void {
    const reason = error.code === 'EOF' ? (END_REASONS[error.syscall] ?? 'eof') : (ERROR_REASONS[error.code] ?? 'socket_error');
    this.socket.closeReason ??= reason;
    if (reason === 'key_update') this.socket.emit('keyUpdateFailed', keyUpdateError(`the peer sent one: ${NATIVE_NO_REKEY}`));
  }

  /** The connection's cause as the user-space path counts it (tls_<reason>), for a TLS-specific end; else null. */
  cause(): Cause | null {
    const reason = this.socket.closeReason;
    if (reason === 'bad_record' || reason === 'peer_alert' || reason === 'protocol' || reason === 'key_update') {
      return { reason: `tls_${reason}`, message: `kTLS: ${reason.replace('_', ' ')}` };
    }
    return null;
  }
}
