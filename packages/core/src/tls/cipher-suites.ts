import type { TlsCipher } from '@kmux/native';

export type TlsVersionName = 'TLSv1.2' | 'TLSv1.3';
export type HashName = 'sha256' | 'sha384';

/** What the record layer of one negotiated cipher suite needs, for the key schedule and for kTLS. */
export interface CipherSuite {
  readonly version: TlsVersionName;
  /** The IANA name, as `TLSSocket.getCipher().standardName` reports it. */
  readonly standardName: string;
  /** The kernel's name for the AEAD (TLS_CIPHER_*). */
  readonly cipher: TlsCipher;
  /** node:crypto's name for the same AEAD. */
  readonly aead: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  /** The suite's hash: HKDF in TLS 1.3, the PRF in TLS 1.2. */
  readonly hash: HashName;
  readonly keyLength: number;
  /**
   * Write IV bytes from the key schedule: 12 in TLS 1.3 and for ChaCha20-Poly1305
   * in TLS 1.2 (RFC 7905); 4 for AES-GCM in TLS 1.2, whose other 8 nonce bytes
   * travel in each record (RFC 5288).
   */
  readonly ivLength: number;
  /** Bytes of explicit nonce at the start of each record body: 8 for TLS 1.2 AES-GCM, else 0. */
  readonly explicitNonceLength: number;
}

type Aead = Pick<CipherSuite, 'cipher' | 'aead' | 'hash' | 'keyLength'>;

// Keyed by the suite name's tail, which is the same in TLS 1.2 (…_WITH_<tail>) and 1.3 (TLS_<tail>).
const AEADS: Record<string, Aead> = {
  AES_128_GCM_SHA256: { cipher: 'aes-gcm-128', aead: 'aes-128-gcm', hash: 'sha256', keyLength: 16 },
  AES_256_GCM_SHA384: { cipher: 'aes-gcm-256', aead: 'aes-256-gcm', hash: 'sha384', keyLength: 32 },
  CHACHA20_POLY1305_SHA256: { cipher: 'chacha20-poly1305', aead: 'chacha20-poly1305', hash: 'sha256', keyLength: 32 },
};

/**
 * The record-layer parameters of a negotiated suite, or null when kmux cannot
 * hand it to the kernel (CBC suites, AES-CCM, anything but TLS 1.2 and 1.3):
 * such a connection stays on user-space TLS.
 */
export function cipherSuite(version: string, standardName: string): CipherSuite | null {
  let tail: string | undefined;
  if (version === 'TLSv1.3') tail = /^TLS_([A-Z0-9_]+)$/.exec(standardName)?.[1];
  else if (version === 'TLSv1.2') tail = /^TLS_[A-Z0-9_]+?_WITH_([A-Z0-9_]+)$/.exec(standardName)?.[1];
  const aead = tail === undefined ? undefined : AEADS[tail];
  if (!aead) return null;
  const tls12Gcm = version === 'TLSv1.2' && aead.cipher !== 'chacha20-poly1305';
  return {
    version: version as TlsVersionName,
    standardName,
    ...aead,
    ivLength: tls12Gcm ? 4 : 12,
    explicitNonceLength: tls12Gcm ? 8 : 0,
  };
}

export function hashLength(hash: HashName): number {
  return hash === 'sha256' ? 32 : 48;
}

const NODE_NAMES: Record<TlsCipher, { tls13: string; tls12: string[] }> = {
  'aes-gcm-128': { tls13: 'TLS_AES_128_GCM_SHA256', tls12: ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'] },
  'aes-gcm-256': { tls13: 'TLS_AES_256_GCM_SHA384', tls12: ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384'] },
  'chacha20-poly1305': {
    tls13: 'TLS_CHACHA20_POLY1305_SHA256',
    tls12: ['ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'],
  },
};

/**
 * A node:tls `ciphers` string offering only suites the kernel can take over (TLS 1.3
 * first, then TLS 1.2 ECDHE AEAD), so a server that requires kTLS never negotiates
 * one it would have to refuse after the handshake.
 */
export function ktlsCipherList(ciphers: Iterable<TlsCipher>): string {
  const order: TlsCipher[] = ['aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305'];
  const wanted = new Set(ciphers);
  const chosen = order.filter((c) => wanted.has(c));
  return [...chosen.map((c) => NODE_NAMES[c].tls13), ...chosen.flatMap((c) => NODE_NAMES[c].tls12)].join(':');
}
