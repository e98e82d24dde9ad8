import { createHmac } from 'node:crypto';
import type { CipherSuite, HashName } from './cipher-suites.js';

/**
 * The TLS 1.2 key block (RFC 5246 §5, §6.3) from the master secret that Node's
 * 'keylog' event reveals (the NSS "CLIENT_RANDOM" line) and the two hello randoms.
 * The PRF hash is the suite's: SHA-384 for *_SHA384 suites, SHA-256 otherwise.
 */

/** PRF(secret, label, seed) = P_<hash>(secret, label + seed). Intermediate values are zeroed. */
export function tls12Prf(hash: HashName, secret: Uint8Array, label: string, seed: Uint8Array, length: number): Buffer {
  const labelSeed = Buffer.concat([Buffer.from(label, 'latin1'), seed]);
  const out = Buffer.alloc(length);
  // A(0) = label + seed; A(i) = HMAC(secret, A(i-1)); output = HMAC(secret, A(i) + label + seed) ...
  let a = createHmac(hash, secret).update(labelSeed).digest();
  for (let offset = 0; offset < length; ) {
    const block = createHmac(hash, secret).update(a).update(labelSeed).digest();
    offset += block.copy(out, offset);
    block.fill(0);
    const next = createHmac(hash, secret).update(a).digest();
    a.fill(0);
    a = next;
  }
  a.fill(0);
  return out;
}

export interface Tls12KeyBlock {
  clientKey: Buffer;
  serverKey: Buffer;
  /** client_write_IV: 4 bytes of implicit nonce for AES-GCM, 12 for ChaCha20-Poly1305. */
  clientIv: Buffer;
  serverIv: Buffer;
}

/**
 * key_block = PRF(master_secret, "key expansion", server_random + client_random),
 * cut into client/server write keys and IVs. AEAD suites have no MAC keys.
 */
export function tls12KeyBlock(
  suite: CipherSuite,
  masterSecret: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
): Tls12KeyBlock {
  const { keyLength: k, ivLength: iv } = suite;
  const seed = Buffer.concat([serverRandom, clientRandom]);
  const block = tls12Prf(suite.hash, masterSecret, 'key expansion', seed, 2 * k + 2 * iv);
  // Copies, so that the block itself can be zeroed.
  const take = (start: number, length: number): Buffer => Buffer.from(block.subarray(start, start + length));
  const keys = {
    clientKey: take(0, k),
    serverKey: take(k, k),
    clientIv: take(2 * k, iv),
    serverIv: take(2 * k + iv, iv),
  };
  block.fill(0);
  return keys;
}
