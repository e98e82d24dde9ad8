import type { HangupError, NativeConnection, NativeTlsEvent, NativeTlsOptions } from '@kmux/native';
import type { KtlsCloseReason, KtlsError } from '../tls/errors.js';
import { keyUpdateError, NEEDS_6_14 } from '../tls/key-update.js';
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

/**
 * A kTLS connection on the native transport. The I/O thread reads and writes its records; the
 * KtlsSocket it came from stays the owner of the fd (closed by destroy()), of the TLS 1.3 traffic
 * secrets, and of the counters (its 'keyUpdate', 'keyUpdateFailed' and 'close' events, counted by
 * the handoff). The I/O thread stops at each KeyUpdate step; this installs the next key on the
 * main thread (KeyUpdater, as KtlsSocket does) and lets it go on, or ends the connection where
 * the kernel cannot rekey: the requests read before the KeyUpdate are answered, then it closes.
 */
export class NativeTlsSession implements NativeTlsOptions {
  readonly tls13: boolean;
  readonly keyUpdateAfter: { readonly records: number; readonly bytes: number } | undefined;
  private connection: NativeConnection | null = null;
  private txPending = false;

  constructor(
    private readonly socket: KtlsSocket,
    /** Ends the connection at once (a TX key the kernel refused): nothing more can be written. */
    private readonly abort: (error: HangupError) => void,
  ) {
    this.tls13 = socket.suite.version === 'TLSv1.3';
    this.keyUpdateAfter = socket.keyUpdater?.limits;
  }

  attach(connection: NativeConnection): void {
    this.connection = connection;
  }

  onEvent(event: NativeTlsEvent): void {
    const connection = this.connection;
    if (!connection) return;
    if (event === 'tx_parked') return this.installTx(connection);
    const updater = this.socket.keyUpdater;
    if (event === 'tx_due') {
      // Our limits (ktlsKeyUpdateAfter): ours, asking the peer to update too.
      updater?.schedule(true);
      return this.sendDue(connection);
    }
    if (!updater) return this.refuse(connection, keyUpdateError(`the peer sent one and kmux kept no traffic secrets: ${NEEDS_6_14}`));
    try {
      updater.nextRx(event === 'key_update_requested');
    } catch (error) {
      return this.refuse(connection, error as KtlsError);
    }
    this.socket.emit('keyUpdate', 'rx');
    // Ours, when asked, is placed before reading resumes: after the replies queued so far.
    this.sendDue(connection);
    connection.resumeRead();
  }

  /** A due KeyUpdate of ours goes to the I/O thread, after the replies queued so far (one at a time). */
  private sendDue(connection: NativeConnection): void {
    const updater = this.socket.keyUpdater;
    if (!updater?.due || this.txPending) return;
    this.txPending = true;
    connection.keyUpdateTx(updater.message());
  }

  /** The connection ended (the I/O thread's hangup): why, as KtlsSocket would say. */
  ended(error: HangupError): void {
    this.socket.closeReason ??= error.code === 'EOF' ? (END_REASONS[error.syscall] ?? 'eof') : (ERROR_REASONS[error.code] ?? 'socket_error');
  }

  /** The connection's cause as the user-space path counts it (tls_<reason>), for a TLS-specific end; else null. */
  cause(): Cause | null {
    const reason = this.socket.closeReason;
    if (reason === 'bad_record' || reason === 'peer_alert' || reason === 'protocol' || reason === 'key_update') {
      return { reason: `tls_${reason}`, message: `kTLS: ${reason.replace('_', ' ')}` };
    }
    return null;
  }

  /** Our KeyUpdate record is out and the I/O thread writes nothing more: the next TX key, then on. */
  private installTx(connection: NativeConnection): void {
    this.txPending = false;
    try {
      this.socket.keyUpdater!.nextTx();
    } catch (error) {
      this.socket.closeReason = 'key_update';
      const failure = Object.assign(new Error((error as Error).message), { code: 'EKEYREJECTED', errno: 0, syscall: 'setsockopt(SOL_TLS, TLS_TX)' });
      return this.abort(failure as HangupError);
    }
    this.socket.emit('keyUpdate', 'tx');
    connection.resumeWrite();
  }

  /** The kernel cannot follow the peer's key: answer what was read, then close (closed.key_update). */
  private refuse(connection: NativeConnection, error: KtlsError): void {
    this.socket.closeReason = 'key_update';
    this.socket.emit('keyUpdateFailed', error);
    connection.endRead();
  }
}
