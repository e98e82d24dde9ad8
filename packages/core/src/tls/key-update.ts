import { release } from 'node:os';
import { isSysError, nativeKtls, TLS_1_3_VERSION, type TlsCipher } from '@kmux/native';
import type { CipherSuite } from './cipher-suites.js';
import { KtlsError } from './errors.js';
import { tls13NextTrafficSecret, tls13TrafficKeys } from './tls13-keys.js';

/**
 * TLS 1.3 KeyUpdate (RFC 8446 §4.6.3) on a kTLS socket: the next generation of a
 * traffic secret gives new keys, installed with a second TLS_RX / TLS_TX at
 * sequence 0. Linux takes a second TLS_RX/TLS_TX only from 6.14 on; 6.1 and 6.12
 * answer EBUSY (measured), and then the connection has to close.
 *
 * This needs the current traffic secrets, so they are kept, and only kept, when
 * the kernel can use them (ktlsSupport().rekey); otherwise the handoff zeroes them.
 */

/** When kmux starts a KeyUpdate of its own: after this many records or bytes sent under one key. */
export interface KeyUpdateLimits {
  readonly records?: number;
  readonly bytes?: number;
}

/**
 * Records one key may protect before kmux rekeys (RFC 8446 §5.5): AES-GCM is safe for
 * 2^24.5 full-size records, so 2^24; ChaCha20-Poly1305 has no limit before the 64-bit
 * sequence number would wrap, so none.
 */
export const DEFAULT_KEY_UPDATE_RECORDS: Readonly<Record<TlsCipher, number>> = {
  'aes-gcm-128': 2 ** 24,
  'aes-gcm-256': 2 ** 24,
  'chacha20-poly1305': Infinity,
};

/** A kTLS record carries at most 2^14 bytes of plaintext. */
export const MAX_RECORD_PLAINTEXT = 16 * 1024;

/** The KeyUpdate handshake message: type 24, length 1, request_update. */
export function keyUpdateMessage(requestUpdate: boolean): Buffer {
  return Buffer.from([24, 0, 0, 1, requestUpdate ? 1 : 0]);
}

/**
 * The traffic secrets of one connection and when the next KeyUpdate is due: asked for
 * (keyUpdate(), or the peer's update_requested) or the limits reached. The KtlsSocket
 * sends the KeyUpdate record, then calls nextTx().
 */
export class KeyUpdater {
  /** Thresholds for our own KeyUpdate, resolved per cipher. */
  readonly limits: Required<KeyUpdateLimits>;
  /** Our KeyUpdate is due at the next point between two sends. */
  due = false;
  /** The due KeyUpdate asks the peer to update its key too. */
  private requestPeer = false;
  /** We asked the peer and it has not updated yet (RFC 8446 §4.6.3: no second request meanwhile). */
  private awaitingPeer = false;
  private recordsUnderKey = 0;
  private bytesUnderKey = 0;

  constructor(
    private readonly fd: number,
    private readonly suite: CipherSuite,
    private tx: Buffer,
    private rx: Buffer,
    limits: KeyUpdateLimits = {},
  ) {
    checkKeyUpdateLimits(limits);
    this.limits = { records: limits.records ?? DEFAULT_KEY_UPDATE_RECORDS[suite.cipher], bytes: limits.bytes ?? Infinity };
  }

  /** Makes our KeyUpdate due; `requestPeer` asks the peer to update too. */
  schedule(requestPeer: boolean): void {
    this.due = true;
    this.requestPeer ||= requestPeer && !this.awaitingPeer;
  }

  /** Counts a send: kTLS closes a record at the end of each sendmsg, so at least one record per 16 KiB started. */
  sent(bytes: number): void {
    this.recordsUnderKey += Math.ceil(bytes / MAX_RECORD_PLAINTEXT);
    this.bytesUnderKey += bytes;
    if (this.recordsUnderKey >= this.limits.records || this.bytesUnderKey >= this.limits.bytes) this.schedule(true);
  }

  /** The KeyUpdate message to send now under the current key; then call nextTx(). */
  message(): Buffer {
    return keyUpdateMessage(this.requestPeer);
  }

  /** Installs the peer's next keys (after its KeyUpdate; `updateRequested` makes ours due). Throws KtlsError('key_update'). */
  nextRx(updateRequested: boolean): void {
    this.rx = this.install('rx', this.rx);
    this.awaitingPeer = false;
    // Answered with update_not_requested unless ours asks anyway (RFC 8446 §4.6.3).
    if (updateRequested) this.schedule(false);
  }

  /** Installs our next keys; call right after sending message() under the current ones. */
  nextTx(): void {
    this.awaitingPeer ||= this.requestPeer;
    this.due = false;
    this.requestPeer = false;
    this.recordsUnderKey = 0;
    this.bytesUnderKey = 0;
    this.tx = this.install('tx', this.tx);
  }

  wipe(): void {
    this.tx.fill(0);
    this.rx.fill(0);
  }

  /** Derives the next secret, wipes the current one, and gives the kernel the next key (which enableKtls zeroes). */
  private install(direction: 'tx' | 'rx', secret: Buffer): Buffer {
    const next = tls13NextTrafficSecret(this.suite.hash, secret);
    secret.fill(0);
    const { key, iv } = tls13TrafficKeys(this.suite.hash, next, this.suite.keyLength);
    const chacha = this.suite.cipher === 'chacha20-poly1305';
    try {
      nativeKtls().enableKtls(this.fd, {
        direction,
        version: TLS_1_3_VERSION,
        cipher: this.suite.cipher,
        key,
        iv: chacha ? iv : iv.subarray(4),
        salt: chacha ? Buffer.alloc(0) : iv.subarray(0, 4),
        recSeq: Buffer.alloc(8),
      });
    } catch (error) {
      next.fill(0);
      const why = isSysError(error) && error.code === 'EBUSY' ? ` (${NEEDS_6_14})` : '';
      throw keyUpdateError(`the kernel refused the new ${direction.toUpperCase()} keys: ${(error as Error).message}${why}`, error);
    } finally {
      key.fill(0);
      iv.fill(0);
    }
    return next;
  }
}

/** Returns the limits when each given one is a positive number; throws RangeError otherwise. */
export function checkKeyUpdateLimits(limits: KeyUpdateLimits): KeyUpdateLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (value !== undefined && !(typeof value === 'number' && value > 0)) {
      throw new RangeError(`ktlsKeyUpdateAfter.${name} must be a positive number, got ${String(value)}`);
    }
  }
  return limits;
}

export const NEEDS_6_14 = 'kTLS takes a second TLS_RX/TLS_TX from Linux 6.14 on; 6.1 and 6.12 answer EBUSY';

export function keyUpdateError(detail: string, cause?: unknown): KtlsError {
  return new KtlsError('key_update', 'ERR_KTLS_KEY_UPDATE', `TLS 1.3 KeyUpdate on Linux ${release()}: ${detail}`, cause === undefined ? undefined : { cause });
}
