import { Duplex } from 'node:stream';
import {
  isSysError,
  nativeKtls,
  POLL_READABLE,
  POLL_WRITABLE,
  type NativeFdPoll,
  type NativeKtls,
} from '@kmux/native';
import { AlertDescription, AlertLevel, CLOSE_NOTIFY } from './alerts.js';
import type { CipherSuite } from './cipher-suites.js';
import { KtlsError, peerAlertError, type KtlsCloseReason } from './errors.js';
import type { KeyUpdater } from './key-update.js';
import { KeyUpdateFlow } from './key-update-flow.js';
import { ContentType, HandshakeType } from './record.js';

/** One recvmsg takes up to this much plaintext (kTLS merges consecutive data records). */
const READ_BYTES = 64 * 1024;
/**
 * A kTLS socket can poll readable while recvmsg has nothing to give (the TCP queue
 * holds part of a record). uv_poll is level-triggered, so polling on would spin until
 * the rest arrives; after this many empty wakeups in a row, reading is retried on a
 * short timer instead.
 */
const EMPTY_WAKEUPS_BEFORE_BACKOFF = 4;
const BACKOFF_MS = 1;

export interface KtlsSocketOptions {
  /** The connected TCP socket, with TLS_TX and TLS_RX set. The KtlsSocket owns and closes it. */
  readonly fd: number;
  readonly suite: CipherSuite;
  /** Plaintext the user-space TLS library decrypted before the handoff: read first. */
  readonly pendingPlaintext?: Buffer;
  /** Keep the writable side open after the peer's close_notify (as net's allowHalfOpen). Default false. */
  readonly allowHalfOpen?: boolean;
  /**
   * TLS 1.3 rekeying, on kernels that can (key-update.ts), with the limits after which this
   * side starts a KeyUpdate; null: a KeyUpdate from the peer closes the connection, once the
   * replies to what was read before it are written.
   */
  readonly keyUpdater?: KeyUpdater | null;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
}

interface PendingWrite {
  data: Buffer;
  offset: number;
  callback: (error?: Error | null) => void;
}

/**
 * A TLS connection whose record layer is in the kernel (kTLS): reads and writes
 * plaintext, with the subset of net.Socket's API that kmux's connections use
 * (setNoDelay, setTimeout and 'timeout', remoteAddress, pause/resume, cork).
 *
 * Records that are not application data come up through the TLS_GET_RECORD_TYPE
 * cmsg (a plain read would fail with EIO):
 *  - close_notify ends the readable side; ending the writable side sends our
 *    close_notify, then a TCP FIN (so a close_notify is always answered: at once
 *    unless allowHalfOpen, else when the owner calls end());
 *  - a fatal alert, a tampered record (EBADMSG), an unexpected record or
 *    handshake message destroy the connection with a KtlsError, whose `reason`
 *    ('peer_alert', 'bad_record', 'protocol') is what the server counts;
 *  - NewSessionTicket is consumed; TLS 1.2 HelloRequest is ignored (RFC 5246
 *    lets a client decline renegotiation silently);
 *  - KeyUpdate rekeys on kernels that can (≥ 6.14), emitting 'keyUpdate' with the
 *    direction ('rx', 'tx') of each new key. Elsewhere the readable side ends at the
 *    KeyUpdate (what follows is under keys the kernel cannot take), the writable side
 *    still takes the replies (our key is still valid), and ending it closes the
 *    connection with a KtlsError, reason 'key_update', instead of close_notify.
 *
 * keyUpdate() starts a KeyUpdate of our own; one also starts by itself after the
 * KeyUpdater's limits (records or bytes sent under one key).
 */
export class KtlsSocket extends Duplex {
  readonly fd: number;
  readonly suite: CipherSuite;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** Why the connection ended: 'close_notify', 'eof' (FIN without close_notify), or a KtlsCloseReason. */
  closeReason: KtlsCloseReason | 'close_notify' | 'eof' | 'local' | null = null;
  bytesRead = 0;
  bytesWritten = 0;

  private readonly native: NativeKtls;
  private readonly poll: NativeFdPoll;
  /** TLS 1.3 rekeying (null where the kernel cannot): also used by the native transport, which reads and writes the fd itself. */
  readonly keyUpdater: KeyUpdater | null;
  private readonly keyUpdates: KeyUpdateFlow;
  private readonly readBuffer = Buffer.allocUnsafe(READ_BYTES);
  private readonly queue: PendingWrite[] = [];
  private handshakeBytes: Buffer = Buffer.alloc(0);
  private wantRead = false;
  private readEnded = false;
  private polled = 0;
  private emptyWakeups = 0;
  private backoff: NodeJS.Timeout | null = null;
  private finalCallback: ((error?: Error | null) => void) | null = null;
  private closeNotifySent = false;
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private fdClosed = false;

  constructor(options: KtlsSocketOptions) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false });
    this.fd = options.fd;
    this.suite = options.suite;
    this.keyUpdater = options.keyUpdater ?? null;
    this.keyUpdates = new KeyUpdateFlow(this.suite, this.keyUpdater, {
      updated: (direction) => this.emit('keyUpdate', direction),
      refused: (error) => this.stopAtKeyUpdate(error),
      sendControl: (type, body) => this.sendControl(type, body),
    });
    this.remoteAddress = options.remoteAddress;
    this.remotePort = options.remotePort;
    this.localAddress = options.localAddress;
    this.localPort = options.localPort;
    this.native = nativeKtls();
    this.poll = new this.native.FdPoll(this.fd, (error, events) => this.onEvent(error, events));
    if (options.pendingPlaintext && options.pendingPlaintext.length > 0) {
      this.bytesRead += options.pendingPlaintext.length;
      this.push(options.pendingPlaintext);
    }
  }

  /** TCP_NODELAY on the socket. */
  setNoDelay(noDelay = true): this {
    if (!this.fdClosed) this.native.setNoDelay(this.fd, noDelay);
    return this;
  }

  /** Emits 'timeout' after `ms` without reads or writes (0 disables), as net.Socket does. */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    if (callback) this.once('timeout', callback);
    this.touch();
    return this;
  }

  /**
   * Starts a TLS 1.3 KeyUpdate of our own: after the writes already sent, a KeyUpdate
   * record, then the next key (emits 'keyUpdate' 'tx'). With `requestPeerUpdate` (default)
   * the peer is asked to update its key too. Throws KtlsError('key_update') when this
   * connection cannot rekey (TLS 1.2, or a kernel before 6.14, whose traffic secrets were
   * zeroed at the handoff).
   */
  keyUpdate(requestPeerUpdate = true): void {
    this.keyUpdates.checkCanStart();
    if (this.destroyed || !this.writable || this.finalCallback) return;
    this.keyUpdates.schedule(requestPeerUpdate);
    this.flush();
  }

  override _read(): void {
    this.wantRead = true;
    this.updatePoll();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.queue.push({ data: chunk, offset: 0, callback });
    this.flush();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    // One sendmsg for a corked batch: kTLS packs it into as few records as it can.
    this.queue.push({ data: Buffer.concat(chunks.map((c) => c.chunk)), offset: 0, callback });
    this.flush();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finalCallback = callback;
    this.flush();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.closeReason ??= error instanceof KtlsError ? error.reason : error ? 'socket_error' : 'local';
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.backoff) clearTimeout(this.backoff);
    for (const pending of this.queue.splice(0)) pending.callback(error ?? new Error('the kTLS socket was destroyed'));
    this.keyUpdates.dispose();
    this.poll.close();
    if (this.fdClosed) {
      callback(error);
      return;
    }
    this.fdClosed = true;
    try {
      this.native.closeFd(this.fd);
    } catch (closeError) {
      callback(error ?? (closeError as Error));
      return;
    }
    callback(error);
  }

  private onEvent(error: Error | null, events: number): void {
    if (error) {
      this.fail(error);
      return;
    }
    if ((events & POLL_WRITABLE) !== 0) this.flush();
    if ((events & POLL_READABLE) !== 0 && !this.destroyed) this.readAvailable();
  }

  private readAvailable(): void {
    let gotAny = false;
    while (this.wantRead && !this.readEnded && !this.destroyed) {
      let result;
      try {
        result = this.native.recvRecord(this.fd, this.readBuffer);
      } catch (error) {
        this.fail(error as Error);
        return;
      }
      if (result === null) break;
      gotAny = true;
      if (result.bytes === 0) {
        // A FIN without close_notify: a truncation attack is possible in TLS, so it is
        // reported as its own reason; the stream still ends normally.
        this.closeReason ??= 'eof';
        this.endReadable();
        break;
      }
      const data = Buffer.from(this.readBuffer.subarray(0, result.bytes));
      this.onRecord(result.recordType ?? ContentType.applicationData, data);
    }
    if (gotAny) {
      this.emptyWakeups = 0;
    } else if (++this.emptyWakeups >= EMPTY_WAKEUPS_BEFORE_BACKOFF && !this.backoff && !this.destroyed) {
      // Part of a record is queued: stop polling and look again shortly.
      this.backoff = setTimeout(() => {
        this.backoff = null;
        this.emptyWakeups = 0;
        this.updatePoll();
        if (!this.destroyed) this.readAvailable();
      }, BACKOFF_MS);
    }
    this.updatePoll();
  }

  private onRecord(type: number, data: Buffer): void {
    switch (type) {
      case ContentType.applicationData:
        this.bytesRead += data.length;
        this.touch();
        if (!this.push(data)) this.wantRead = false;
        return;
      case ContentType.alert:
        this.onAlert(data);
        return;
      case ContentType.handshake:
        this.onHandshake(data);
        return;
      default:
        this.fail(new KtlsError('protocol', 'ERR_TLS_UNEXPECTED_RECORD', `unexpected TLS record of type ${type} after the handshake`));
    }
  }

  private onAlert(data: Buffer): void {
    if (data.length !== 2) {
      this.fail(new KtlsError('protocol', 'ERR_TLS_BAD_ALERT', `an alert record of ${data.length} bytes`));
      return;
    }
    const [level, description] = [data[0]!, data[1]!];
    if (description === AlertDescription.closeNotify) {
      this.closeReason ??= 'close_notify';
      this.endReadable();
      return;
    }
    // user_canceled precedes a close_notify; TLS 1.2 warnings (e.g. no_renegotiation) are not fatal.
    if (description === AlertDescription.userCanceled) return;
    if (level === AlertLevel.warning && this.suite.version === 'TLSv1.2') return;
    this.fail(peerAlertError(level, description));
  }

  /** Handshake messages may share a record or span several: reassembled here. */
  private onHandshake(data: Buffer): void {
    this.handshakeBytes = this.handshakeBytes.length > 0 ? Buffer.concat([this.handshakeBytes, data]) : data;
    while (this.handshakeBytes.length >= 4 && !this.destroyed) {
      const length = this.handshakeBytes.readUIntBE(1, 3);
      if (this.handshakeBytes.length < 4 + length) return;
      const type = this.handshakeBytes[0]!;
      const body = this.handshakeBytes.subarray(4, 4 + length);
      this.handshakeBytes = this.handshakeBytes.subarray(4 + length);
      this.onHandshakeMessage(type, body);
    }
  }

  private onHandshakeMessage(type: number, body: Buffer): void {
    const tls13 = this.suite.version === 'TLSv1.3';
    if (tls13 && type === HandshakeType.newSessionTicket) return; // resumption is not offered after a handoff
    if (!tls13 && type === HandshakeType.helloRequest) return;
    if (tls13 && type === HandshakeType.keyUpdate && body.length === 1 && body[0]! <= 1) {
      this.keyUpdates.received(body[0] === 1);
      if (this.keyUpdates.due) this.flush();
      return;
    }
    this.fail(new KtlsError('protocol', 'ERR_TLS_UNEXPECTED_MESSAGE', `unexpected handshake message of type ${type} after the handshake`));
  }

  /**
   * The peer's records from here on are under a key the kernel does not have, so reading
   * stops (a read would fail with EBADMSG, and that error would also fail our sends). Our
   * key still works: the owner sees the end of the stream, writes the replies to what it
   * read, and ends; then the connection closes with this error (flush()).
   */
  private stopAtKeyUpdate(error: KtlsError): void {
    this.closeReason = error.reason;
    this.endReadable();
    this.emit('keyUpdateFailed', error);
  }

  private endReadable(): void {
    if (this.readEnded) return;
    this.readEnded = true;
    this.wantRead = false;
    this.push(null);
  }

  private flush(): void {
    if (this.destroyed || this.keyUpdates.closing) return;
    try {
      for (;;) {
        // Between two sends: the next byte starts a new record, so the new key may begin here.
        if (!this.keyUpdates.sendDue()) break;
        if (this.queue.length === 0) break;
        const head = this.queue[0]!;
        const sent = this.native.send(this.fd, head.data.subarray(head.offset));
        if (sent === null) break;
        head.offset += sent;
        this.bytesWritten += sent;
        this.keyUpdates.sent(sent);
        if (head.offset < head.data.length) continue;
        this.queue.shift();
        this.touch();
        head.callback();
      }
      const drained = this.queue.length === 0 && !this.keyUpdates.due;
      if (drained && this.finalCallback && this.keyUpdates.failure) {
        // After a KeyUpdate we could not follow, the owner wrote its replies and ended: FIN
        // after them, and close (with the error) once the peer has acknowledged them.
        this.shutdownWrite();
        this.poll.start((this.polled = 0));
        this.keyUpdates.closeWhenAcked(() => this.native.unackedBytes(this.fd), (failure) => this.destroy(failure));
        return;
      }
      if (drained && this.finalCallback) {
        if (!this.closeNotifySent && !this.sendControl(ContentType.alert, Buffer.from(CLOSE_NOTIFY))) {
          this.updatePoll();
          return;
        }
        this.closeNotifySent = true;
        const callback = this.finalCallback;
        this.finalCallback = null;
        this.shutdownWrite();
        callback();
      }
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    this.updatePoll();
  }

  /** Sends one whole control record; false when the socket is full (retried on POLL_WRITABLE). */
  private sendControl(type: number, body: Buffer): boolean {
    const sent = this.native.sendRecord(this.fd, body, type);
    if (sent === null) return false;
    if (sent !== body.length) throw new KtlsError('socket_error', 'ERR_TLS_SHORT_SEND', `sent ${sent} of a ${body.length}-byte control record`);
    return true;
  }

  private shutdownWrite(): void {
    try {
      this.native.shutdown(this.fd, 'write');
    } catch (error) {
      // The peer may have closed already; its FIN or RST is then what the read side reports.
      if (!(isSysError(error) && error.code === 'ENOTCONN')) throw error;
    }
  }

  private fail(error: Error): void {
    if (this.destroyed) return;
    const reason: KtlsCloseReason =
      error instanceof KtlsError ? error.reason : isSysError(error) && error.code === 'EBADMSG' ? 'bad_record' : 'socket_error';
    const wrapped =
      error instanceof KtlsError
        ? error
        : new KtlsError(
            reason,
            isSysError(error) ? error.code : 'ERR_KTLS',
            reason === 'bad_record' ? `a TLS record failed authentication: ${error.message}` : error.message,
            { cause: error },
          );
    this.closeReason = reason;
    this.destroy(wrapped);
  }

  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.idleMs > 0 && !this.destroyed) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
      this.idleTimer.unref();
    }
  }

  private updatePoll(): void {
    if (this.destroyed) return;
    const readable = this.wantRead && !this.readEnded && this.backoff === null;
    const events = (readable ? POLL_READABLE : 0) | (this.queue.length > 0 || (this.finalCallback && !this.closeNotifySent && !this.keyUpdates.failure) || this.keyUpdates.due ? POLL_WRITABLE : 0);
    if (events === this.polled) return;
    this.polled = events;
    this.poll.start(events);
  }
}
