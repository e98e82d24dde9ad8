import type { CipherSuite } from './cipher-suites.js';
import type { KtlsError } from './errors.js';
import { keyUpdateError, NEEDS_6_14, type KeyUpdater } from './key-update.js';
import { ContentType } from './record.js';

/**
 * After a KeyUpdate the kernel cannot follow, the replies already written must reach
 * the peer before close() (which, with unread data queued, resets the connection and
 * drops what is unsent): the close waits until the peer acknowledged them, up to this long.
 */
const LINGER_MS = 2000;
const LINGER_POLL_MS = 2;

/** What the flow does through its KtlsSocket. */
export interface KeyUpdateHooks {
  /** A new key is in use: the peer's ('rx') or ours ('tx'). */
  updated(direction: 'rx' | 'tx'): void;
  /** The peer's KeyUpdate could not be followed: its records from here on cannot be read. */
  refused(error: KtlsError): void;
  /** Sends one whole control record; false when the socket is full. */
  sendControl(type: number, body: Buffer): boolean;
}

/**
 * A KtlsSocket's TLS 1.3 KeyUpdates: following the peer's, sending ours between two sends
 * (asked for, or the KeyUpdater's limits reached), and, where the kernel cannot rekey
 * (TLS 1.2, Linux < 6.14: no KeyUpdater), closing with the error once the replies to what
 * was read before the peer's KeyUpdate are acknowledged.
 */
export class KeyUpdateFlow {
  /** Set when the peer's KeyUpdate could not be followed: the close waits for the replies, then fails with it. */
  failure: KtlsError | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly suite: CipherSuite,
    private readonly updater: KeyUpdater | null,
    private readonly hooks: KeyUpdateHooks,
  ) {}

  /** Our KeyUpdate waits for the next point between two sends. */
  get due(): boolean {
    return this.updater?.due ?? false;
  }

  /** The close after a refused KeyUpdate has begun: nothing more is sent. */
  get closing(): boolean {
    return this.lingerTimer !== null;
  }

  /** Throws KtlsError('key_update') when this connection cannot start a KeyUpdate. */
  checkCanStart(): void {
    if (this.updater) return;
    throw keyUpdateError(this.suite.version === 'TLSv1.3' ? `kmux kept no traffic secrets: ${NEEDS_6_14}` : `${this.suite.version} has no KeyUpdate`);
  }

  /** Makes our KeyUpdate due; `requestPeer` asks the peer to update its key too. */
  schedule(requestPeer: boolean): void {
    this.checkCanStart();
    this.updater!.schedule(requestPeer);
  }

  /** The peer's KeyUpdate was read: its next key is installed (and ours made due if it asked), or reading is refused. */
  received(updateRequested: boolean): void {
    if (!this.updater) {
      this.refuse(keyUpdateError(`the peer sent one and kmux kept no traffic secrets: ${NEEDS_6_14}`));
      return;
    }
    try {
      this.updater.nextRx(updateRequested);
    } catch (error) {
      this.refuse(error as KtlsError);
      return;
    }
    this.hooks.updated('rx');
  }

  /** Between two sends: a due KeyUpdate under the current key, then the next key. False when the socket is full; throws when the kernel refuses. */
  sendDue(): boolean {
    if (!this.updater?.due) return true;
    if (!this.hooks.sendControl(ContentType.handshake, this.updater.message())) return false;
    this.updater.nextTx();
    this.hooks.updated('tx');
    return true;
  }

  /** Counts plaintext sent under the current key. */
  sent(bytes: number): void {
    this.updater?.sent(bytes);
  }

  /**
   * After the refused KeyUpdate, once the owner wrote its replies and the FIN followed them:
   * close(failure) when the peer has acknowledged them (unackedBytes() 0), or after LINGER_MS.
   */
  closeWhenAcked(unackedBytes: () => number, close: (failure: KtlsError) => void): void {
    const failure = this.failure!;
    const deadline = performance.now() + LINGER_MS;
    const check = (): void => {
      this.lingerTimer = null;
      let unacked = 0;
      try {
        unacked = unackedBytes();
      } catch {
        // The connection is gone (reset): nothing left to wait for.
      }
      if (unacked > 0 && performance.now() < deadline) this.lingerTimer = setTimeout(check, LINGER_POLL_MS);
      else close(failure);
    };
    check();
  }

  /** At the socket's end: no more waiting, and the traffic secrets are wiped. */
  dispose(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.updater?.wipe();
  }

  private refuse(error: KtlsError): void {
    this.failure = error;
    this.hooks.refused(error);
  }
}
