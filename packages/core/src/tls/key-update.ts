import { release } from 'node:os';
import { nativeKtls, TLS_1_3_VERSION } from '@kmux/native';
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
 * the kernel can use them (kernelCanRekey()); otherwise the handoff zeroes them.
 */

/** Linux ≥ 6.14 takes new TLS 1.3 keys on a kTLS socket. */
export function kernelCanRekey(osRelease: string = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(osRelease);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 6 || (major === 6 && minor >= 14);
}

/** The KeyUpdate handshake message: type 24, length 1, request_update. */
export function keyUpdateMessage(requestUpdate: boolean): Buffer {
  return Buffer.from([24, 0, 0, 1, requestUpdate ? 1 : 0]);
}

export class KeyUpdater {
  constructor(
    private readonly fd: number,
    private readonly suite: CipherSuite,
    private tx: Buffer,
    private rx: Buffer,
  ) {}

  /** Installs the peer's next keys (after its KeyUpdate). Throws KtlsError('key_update'). */
  nextRx(): void {
    this.rx = this.install('rx', this.rx);
  }

  /** Installs our next keys; call right after sending our KeyUpdate under the current ones. */
  nextTx(): void {
    this.tx = this.install('tx', this.tx);
  }

  wipe(): void {
    this.tx.fill(0);
    this.rx.fill(0);
  }

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
      throw keyUpdateError(`the kernel refused the new ${direction.toUpperCase()} keys: ${(error as Error).message}`, error);
    } finally {
      key.fill(0);
      iv.fill(0);
    }
    return next;
  }
}

export function keyUpdateError(detail: string, cause?: unknown): KtlsError {
  return new KtlsError(
    'key_update',
    'ERR_KTLS_KEY_UPDATE',
    `the peer sent a TLS 1.3 KeyUpdate and kTLS cannot rekey on Linux ${release()} (a second TLS_RX/TLS_TX needs 6.14; ` +
      `6.1 and 6.12 answer EBUSY): ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}
