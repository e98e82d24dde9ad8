/**
 * What happened to TLS connections, for the server's stats: how many moved to
 * kTLS (per version and cipher), how many stayed on user-space TLS and why, how
 * many handoffs failed, and how kTLS connections ended.
 */
export interface KtlsCountersSnapshot {
  /** "TLSv1.3 aes-gcm-128" → connections handed to the kernel. */
  readonly handoffs: Readonly<Record<string, number>>;
  /** Reason → connections that stayed on user-space TLS (e.g. "cipher_not_supported"). */
  readonly userspace: Readonly<Record<string, number>>;
  /** Reason → connections closed because the handshake or the handoff failed. */
  readonly failed: Readonly<Record<string, number>>;
  /** How kTLS connections ended: close_notify, eof, bad_record, peer_alert, key_update, protocol, socket_error, local. */
  readonly closed: Readonly<Record<string, number>>;
  /** TLS 1.3 KeyUpdates installed in the kernel, by direction (rx, tx); a refused one closes the connection (closed.key_update). */
  readonly keyUpdates: Readonly<Record<string, number>>;
}

export class KtlsCounters {
  private readonly maps = {
    handoffs: new Map<string, number>(),
    userspace: new Map<string, number>(),
    failed: new Map<string, number>(),
    closed: new Map<string, number>(),
    keyUpdates: new Map<string, number>(),
  };

  count(kind: keyof KtlsCountersSnapshot, key: string): void {
    const map = this.maps[kind];
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  snapshot(): KtlsCountersSnapshot {
    const plain = (m: Map<string, number>): Record<string, number> => Object.fromEntries(m);
    return {
      handoffs: plain(this.maps.handoffs),
      userspace: plain(this.maps.userspace),
      failed: plain(this.maps.failed),
      closed: plain(this.maps.closed),
      keyUpdates: plain(this.maps.keyUpdates),
    };
  }
}
