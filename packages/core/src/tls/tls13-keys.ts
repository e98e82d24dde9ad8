import { createHmac } from 'node:crypto';
import { hashLength, type HashName } from './cipher-suites.js';

/**
 * The TLS 1.3 key schedule steps kmux needs (RFC 8446 §7.1, §7.3): from a
 * traffic secret that Node's 'keylog' event reveals to the record key and iv,
 * and to the next generation of the secret after a KeyUpdate. node:crypto's
 * hkdf() always runs Extract first, which this must not, so Expand is written
 * out with HMAC (RFC 5869 §2.3).
 */

const EMPTY = Buffer.alloc(0);

/** HKDF-Expand(PRK, info, L). Intermediate blocks are zeroed. */
export function hkdfExpand(hash: HashName, prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  if (length > 255 * hashLength(hash)) throw new RangeError(`HKDF-Expand: ${length} bytes is more than 255 blocks`);
  const out = Buffer.alloc(length);
  let previous: Buffer = EMPTY;
  for (let block = 1, offset = 0; offset < length; block++) {
    const t = createHmac(hash, prk).update(previous).update(info).update(Uint8Array.of(block)).digest();
    previous.fill(0);
    offset += t.copy(out, offset);
    previous = t;
  }
  previous.fill(0);
  return out;
}

/** HKDF-Expand-Label(Secret, Label, Context, Length): the HkdfLabel struct, then HKDF-Expand. */
export function hkdfExpandLabel(hash: HashName, secret: Uint8Array, label: string, context: Uint8Array, length: number): Buffer {
  const fullLabel = Buffer.from(`tls13 ${label}`, 'latin1');
  if (fullLabel.length > 255 || context.length > 255) throw new RangeError('HKDF-Expand-Label: label or context too long');
  const info = Buffer.concat([
    Uint8Array.of(length >> 8, length & 0xff, fullLabel.length),
    fullLabel,
    Uint8Array.of(context.length),
    context,
  ]);
  return hkdfExpand(hash, secret, info, length);
}

export interface TrafficKeys {
  key: Buffer;
  /** The 12-byte write iv; the per-record nonce is iv XOR the sequence number. */
  iv: Buffer;
}

/** [sender]_write_key and [sender]_write_iv from a traffic secret (RFC 8446 §7.3). */
export function tls13TrafficKeys(hash: HashName, secret: Uint8Array, keyLength: number): TrafficKeys {
  return {
    key: hkdfExpandLabel(hash, secret, 'key', EMPTY, keyLength),
    iv: hkdfExpandLabel(hash, secret, 'iv', EMPTY, 12),
  };
}

/** application_traffic_secret_N+1 after a KeyUpdate (RFC 8446 §7.2). */
export function tls13NextTrafficSecret(hash: HashName, secret: Uint8Array): Buffer {
  return hkdfExpandLabel(hash, secret, 'traffic upd', EMPTY, hashLength(hash));
}
