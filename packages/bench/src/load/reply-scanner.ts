import { FRAME_HEADER_BYTES, messageType, seqidOffset } from './thrift-wire.js';

/** Called once per complete reply frame with its message type and seqid. */
export type OnReply = (type: number, seqid: number) => void;

/**
 * Splits a byte stream of framed Thrift replies and reports each one's type and seqid.
 * It reads only the length prefix and the message head; bodies are skipped. Bytes of an
 * incomplete frame are kept until the rest arrives.
 */
export class ReplyScanner {
  private carry: Buffer | null = null;

  constructor(private readonly onReply: OnReply) {}

  push(chunk: Buffer): void {
    const data = this.carry === null ? chunk : Buffer.concat([this.carry, chunk]);
    this.carry = null;
    let offset = 0;
    while (data.length - offset >= FRAME_HEADER_BYTES) {
      const end = offset + FRAME_HEADER_BYTES + data.readUInt32BE(offset);
      if (end > data.length) break;
      const bodyStart = offset + FRAME_HEADER_BYTES;
      this.onReply(messageType(data, bodyStart), data.readInt32BE(seqidOffset(data, bodyStart)));
      offset = end;
    }
    // Copy the tail: keeping a view would pin the whole (possibly large) chunk.
    if (offset < data.length) this.carry = Buffer.from(data.subarray(offset));
  }

  /** Bytes held for a reply that has not fully arrived. */
  get pendingBytes(): number {
    return this.carry?.length ?? 0;
  }
}
