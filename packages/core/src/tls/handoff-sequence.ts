import { openRecord, type RecordKeys } from './record-crypto.js';
import { ContentType, RECORD_HEADER_BYTES, type WireRecord } from './record.js';

/**
 * How far the user-space TLS library got in one direction under the traffic keys
 * the kernel takes over: the number of records it protected (sent) or removed the
 * protection from (received), which is the next record's sequence number.
 *
 * Counted by trial decryption of the records that went over the wire rather than
 * predicted: an OpenSSL TLS 1.3 server sends NewSessionTickets (2 by default, still
 * 2 with SSL_OP_NO_TICKET, which only makes them stateful) after the handshake, and
 * a peer may pipeline application data behind its Finished. Decrypting also proves
 * the derived keys right before the kernel gets them.
 */
export interface DirectionState {
  /** Records protected under these keys so far: the sequence number the kernel starts at. */
  readonly records: bigint;
  /** Application-data plaintext bytes in those records. */
  readonly applicationBytes: number;
  /** TLS 1.2 AES-GCM: the explicit nonce of the last record, or null. */
  readonly lastExplicitNonce: Buffer | null;
}

export class KeyMismatchError extends Error {}

export function countProtectedRecords(keys: RecordKeys, records: readonly WireRecord[]): DirectionState {
  const candidates = keys.suite.version === 'TLSv1.3' ? tls13Candidates(keys, records) : tls12Candidates(records);
  let seq = 0n;
  let applicationBytes = 0;
  for (const [index, record] of candidates.entries()) {
    const opened = openRecord(keys, seq, record.bytes);
    if (!opened) {
      throw new KeyMismatchError(
        `record ${index} after the change to the traffic keys does not decrypt at sequence number ${seq} ` +
          `(type ${record.type}, ${record.bytes.length} bytes)`,
      );
    }
    if (opened.type === ContentType.applicationData) applicationBytes += opened.plaintext.length;
    opened.plaintext.fill(0);
    seq++;
  }
  const last = candidates.at(-1);
  const lastExplicitNonce =
    last && keys.suite.explicitNonceLength > 0
      ? Buffer.from(last.bytes.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + keys.suite.explicitNonceLength))
      : null;
  return { records: seq, applicationBytes, lastExplicitNonce };
}

/**
 * TLS 1.3: every protected record is outer type 23, under handshake keys first and
 * application keys after. The first one that opens at sequence 0 under the
 * application keys starts the count; all later ones must open in turn.
 */
function tls13Candidates(keys: RecordKeys, records: readonly WireRecord[]): WireRecord[] {
  const protectedRecords = records.filter((r) => r.type === ContentType.applicationData);
  const first = protectedRecords.findIndex((r) => {
    const opened = openRecord(keys, 0n, r.bytes);
    opened?.plaintext.fill(0);
    return opened !== null;
  });
  return first < 0 ? [] : protectedRecords.slice(first);
}

/** TLS 1.2: everything after this direction's ChangeCipherSpec is under the new keys, from sequence 0. */
function tls12Candidates(records: readonly WireRecord[]): WireRecord[] {
  let ccs = -1;
  records.forEach((r, i) => {
    if (r.type === ContentType.changeCipherSpec) ccs = i;
  });
  return ccs < 0 ? [] : records.slice(ccs + 1);
}
