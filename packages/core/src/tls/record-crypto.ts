import { createCipheriv, createDecipheriv, type CipherGCM, type DecipherGCM } from 'node:crypto';
import type { CipherSuite } from './cipher-suites.js';
import { RECORD_HEADER_BYTES } from './record.js';

/**
 * AEAD record protection in user space, with node:crypto: used to find out how
 * many records the user-space TLS library protected before the handoff (trial
 * decryption, handoff-sequence.ts) and by the tests, which check the kernel's
 * records against it. The kernel does the same per record after the handoff.
 */

const TAG_BYTES = 16;

export interface RecordKeys {
  readonly suite: CipherSuite;
  readonly key: Buffer;
  /** 12 bytes (TLS 1.3, TLS 1.2 ChaCha20) or the 4-byte implicit nonce (TLS 1.2 AES-GCM). */
  readonly iv: Buffer;
}

export interface OpenedRecord {
  /** The content type: the outer one in TLS 1.2, the inner one in TLS 1.3. */
  readonly type: number;
  readonly plaintext: Buffer;
}

function seqBytes(seq: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(seq);
  return out;
}

/** iv XOR the sequence number, left-padded to 12 bytes (TLS 1.3, and ChaCha20 in TLS 1.2). */
function xorNonce(iv: Buffer, seq: bigint): Buffer {
  const nonce = Buffer.from(iv);
  const s = seqBytes(seq);
  for (let i = 0; i < 8; i++) nonce[4 + i]! ^= s[i]!;
  return nonce;
}

/** TLS 1.2 additional data: seq_num + type + version + plaintext length. */
function tls12Aad(seq: bigint, header: Uint8Array, plaintextLength: number): Buffer {
  return Buffer.concat([seqBytes(seq), Uint8Array.of(header[0]!, header[1]!, header[2]!, plaintextLength >> 8, plaintextLength & 0xff)]);
}

function decipher(keys: RecordKeys, nonce: Buffer): DecipherGCM {
  return createDecipheriv(keys.suite.aead as 'aes-128-gcm', keys.key, nonce, { authTagLength: TAG_BYTES });
}

/**
 * Decrypts and authenticates one whole record (header included) as record
 * number `seq`; null when it does not authenticate under these keys at this seq.
 */
export function openRecord(keys: RecordKeys, seq: bigint, record: Buffer): OpenedRecord | null {
  const { suite } = keys;
  const header = record.subarray(0, RECORD_HEADER_BYTES);
  const body = record.subarray(RECORD_HEADER_BYTES);
  const explicit = suite.explicitNonceLength;
  if (body.length < explicit + TAG_BYTES) return null;
  const ciphertext = body.subarray(explicit, body.length - TAG_BYTES);
  const tag = body.subarray(body.length - TAG_BYTES);
  const tls13 = suite.version === 'TLSv1.3';
  const nonce = explicit > 0 ? Buffer.concat([keys.iv, body.subarray(0, explicit)]) : xorNonce(keys.iv, seq);
  const d = decipher(keys, nonce);
  nonce.fill(0); // derived from the write iv: key material
  d.setAAD(tls13 ? header : tls12Aad(seq, header, ciphertext.length), { plaintextLength: ciphertext.length });
  d.setAuthTag(tag);
  let plaintext: Buffer;
  try {
    plaintext = Buffer.concat([d.update(ciphertext), d.final()]);
  } catch {
    return null;
  }
  if (!tls13) return { type: header[0]!, plaintext };
  // TLSInnerPlaintext = content || type || zero padding
  let end = plaintext.length;
  while (end > 0 && plaintext[end - 1] === 0) end--;
  if (end === 0) return null;
  return { type: plaintext[end - 1]!, plaintext: plaintext.subarray(0, end - 1) };
}

/**
 * Protects one record as record number `seq`. TLS 1.2 AES-GCM sends
 * `explicitNonce` (default: the sequence number, as kTLS starts from).
 */
export function sealRecord(keys: RecordKeys, seq: bigint, type: number, plaintext: Buffer, explicitNonce?: Buffer): Buffer {
  const { suite } = keys;
  const tls13 = suite.version === 'TLSv1.3';
  const inner = tls13 ? Buffer.concat([plaintext, Uint8Array.of(type)]) : plaintext;
  const explicit = suite.explicitNonceLength > 0 ? (explicitNonce ?? seqBytes(seq)) : Buffer.alloc(0);
  const bodyLength = explicit.length + inner.length + TAG_BYTES;
  const header = Uint8Array.of(tls13 ? 23 : type, 3, 3, bodyLength >> 8, bodyLength & 0xff);
  const nonce = explicit.length > 0 ? Buffer.concat([keys.iv, explicit]) : xorNonce(keys.iv, seq);
  const c = createCipheriv(suite.aead as 'aes-128-gcm', keys.key, nonce, { authTagLength: TAG_BYTES }) as CipherGCM;
  nonce.fill(0);
  c.setAAD(tls13 ? header : tls12Aad(seq, header, inner.length), { plaintextLength: inner.length });
  const ciphertext = Buffer.concat([c.update(inner), c.final()]);
  return Buffer.concat([header, explicit, ciphertext, c.getAuthTag()]);
}
