/**
 * What the kernel offers kmux, as measured by native/probe.cc: each entry is a
 * real system call tried on this kernel, as this thread, right now.
 */

/** The outcome of one system call (or chain of calls) that the probe tried. */
export interface SyscallCheck {
  ok: boolean;
  /** errno of the failing call; 0 when ok. */
  errno: number;
  /** errno's name, e.g. "EAFNOSUPPORT"; null when ok. */
  code: string | null;
  /** The call that decided the outcome and, on failure, the errno with its message. */
  reason: string;
}

export type TlsCipher = 'aes-gcm-128' | 'aes-gcm-256' | 'chacha20-poly1305';

export interface KernelProbe {
  /** uname -r */
  release: string;
  /** socket(AF_KCM, SOCK_DGRAM, KCMPROTO_CONNECTED) */
  kcm: SyscallCheck;
  /**
   * SIOCKCMATTACH of a connected TCP socket with a BPF parser: what the KCM
   * transport does per connection (an LSM such as SELinux may refuse it).
   */
  kcmAttach: SyscallCheck;
  ktls: {
    /** setsockopt(TCP_ULP, "tls") on a connected loopback TCP socket. */
    ulp: SyscallCheck;
    /**
     * TLS_TX and TLS_RX with a dummy TLS 1.3 key, per cipher: the ULP alone may
     * load while the kernel lacks a cipher's crypto.
     */
    ciphers: Record<TlsCipher, { tx: SyscallCheck; rx: SyscallCheck }>;
    /**
     * A second TLS_TX on a TLS 1.3 socket, as a KeyUpdate rekey does: accepted from
     * Linux 6.14, EBUSY before.
     */
    rekey: SyscallCheck;
  };
  /** BPF_PROG_LOAD of a trivial socket filter. */
  bpf: SyscallCheck;
  sockmap: {
    /** BPF_MAP_CREATE of a BPF_MAP_TYPE_SOCKMAP. */
    map: SyscallCheck;
    /** sk_skb stream parser and verdict programs loaded and attached to the map. */
    streamParser: SyscallCheck;
    /** A connected TCP socket inserted into that map (the kernel starts strparser on it). */
    insertTcp: SyscallCheck;
  };
  /** Effective capabilities of the probing thread (capget). */
  capabilities: { query: SyscallCheck; bpf: boolean; netAdmin: boolean };
}

