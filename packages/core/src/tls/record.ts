/**
 * The TLS record framing (RFC 8446 §5.1, RFC 5246 §6.2): a 5-byte header
 * (content type, legacy version, length) and a body of at most 2^14 + 2048 bytes.
 */

export const RECORD_HEADER_BYTES = 5;
/** TLSCiphertext may be up to 2^14 + 2048 bytes in TLS 1.2 (2^14 + 256 in TLS 1.3). */
export const MAX_RECORD_BODY_BYTES = 16384 + 2048;

export const ContentType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
} as const;

export const HandshakeType = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  newSessionTicket: 4,
  certificateRequest: 13,
  keyUpdate: 24,
} as const;

/** One whole record as it went over the wire (header included). */
export interface WireRecord {
  readonly type: number;
  readonly bytes: Buffer;
}

/**
 * The body length from a header; throws on a header that cannot start a TLS
 * record (a peer that is not speaking TLS), so that nothing waits for 64 KiB.
 */
export function recordBodyLength(header: Uint8Array): number {
  const type = header[0]!;
  const length = (header[3]! << 8) | header[4]!;
  if (type < 20 || type > 24 || header[1] !== 3 || length > MAX_RECORD_BODY_BYTES) {
    throw new Error(`not a TLS record header: ${Buffer.from(header.subarray(0, RECORD_HEADER_BYTES)).toString('hex')}`);
  }
  return length;
}

/** Splits a byte stream into whole records, carrying a partial one to the next push. */
export class RecordSplitter {
  private carry: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onRecord: (record: WireRecord) => void): void {
    let data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    while (data.length >= RECORD_HEADER_BYTES) {
      const total = RECORD_HEADER_BYTES + recordBodyLength(data);
      if (data.length < total) break;
      onRecord({ type: data[0]!, bytes: Buffer.from(data.subarray(0, total)) });
      data = data.subarray(total);
    }
    this.carry = Buffer.from(data);
  }

  get pendingBytes(): number {
    return this.carry.length;
  }
}

/**
 * The server random from the first plaintext handshake bytes of the server:
 * ServerHello = type(1) length(3) legacy_version(2) random(32). Null until 38 bytes are there.
 */
export function serverRandomOf(serverHandshake: Buffer): Buffer | null {
  if (serverHandshake.length < 38) return null;
  if (serverHandshake[0] !== HandshakeType.serverHello) {
    throw new Error(`expected a ServerHello, got handshake message type ${serverHandshake[0]}`);
  }
  return Buffer.from(serverHandshake.subarray(6, 38));
}
