import { loadNative, type TlsCipher } from '@kmux/native';

/** Whether this kernel takes the record layer of a cipher, as the native probe measured it. */
export interface KtlsSupport {
  /** The ULP loads and at least one cipher works in both directions. */
  readonly available: boolean;
  /** One line: what works, or the failing call and errno. */
  readonly reason: string;
  /** Ciphers with TLS_TX and TLS_RX both accepted. */
  readonly ciphers: ReadonlySet<TlsCipher>;
  /** A second TLS_TX is accepted: TLS 1.3 KeyUpdate can rekey the kernel (Linux ≥ 6.14; EBUSY before). */
  readonly rekey: boolean;
}

let cached: KtlsSupport | undefined;

/**
 * Probes once per thread (a few loopback sockets): kTLS availability depends on the
 * kernel's config and modules (tls.ko, and the crypto it loads by name), not on kmux.
 */
export function ktlsSupport(): KtlsSupport {
  cached ??= probeKtlsSupport();
  return cached;
}

/** Probes now, uncached (after loading or unloading a crypto module, say). */
export function probeKtlsSupport(): KtlsSupport {
  const native = loadNative();
  if (!native.ok) return { available: false, reason: `native addon not loaded: ${native.reason}`, ciphers: new Set(), rekey: false };
  const { ktls, release } = native.binding.probeKernel();
  if (!ktls.ulp.ok) return { available: false, reason: `Linux ${release}: ${ktls.ulp.reason}`, ciphers: new Set(), rekey: false };
  const ciphers = new Set<TlsCipher>();
  const missing: string[] = [];
  for (const [cipher, { tx, rx }] of Object.entries(ktls.ciphers) as Array<[TlsCipher, { tx: { ok: boolean; reason: string }; rx: { ok: boolean; reason: string } }]>) {
    if (tx.ok && rx.ok) ciphers.add(cipher);
    else missing.push(`${cipher} (${tx.ok ? rx.reason : tx.reason})`);
  }
  const has = ciphers.size > 0 ? `kTLS with ${[...ciphers].join(', ')}` : 'kTLS without any cipher kmux uses';
  const rekey = ktls.rekey.ok ? 'TLS 1.3 KeyUpdate rekeys in the kernel' : `no TLS 1.3 rekey (${ktls.rekey.reason})`;
  return {
    available: ciphers.size > 0,
    reason: `Linux ${release}: ${has}${missing.length ? `; missing ${missing.join(', ')}` : ''}; ${rekey}`,
    ciphers,
    rekey: ktls.rekey.ok,
  };
}
