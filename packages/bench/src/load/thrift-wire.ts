/**
 * Just enough of Thrift's framed transport + strict binary protocol for the load
 * generator's hot path: where a message's seqid sits, and what type a reply is. Replies are
 * never decoded into objects.
 *
 * A framed binary message starts: length (4) | 0x8001 0000 | type (i32 low byte) |
 * name length (4) | name | seqid (4) | struct...
 */
export const FRAME_HEADER_BYTES = 4;

export const MessageType = { CALL: 1, REPLY: 2, EXCEPTION: 3, ONEWAY: 4 } as const;

const VERSION_MASK = 0xffff0000;
const VERSION_1 = 0x80010000;

export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
}

/**
 * Offset of the seqid inside a message body that starts at `bodyStart`.
 * Throws WireFormatError for anything that is not a strict binary-protocol message.
 */
export function seqidOffset(buf: Buffer, bodyStart: number): number {
  const versionAndType = buf.readUInt32BE(bodyStart);
  if ((versionAndType & VERSION_MASK) >>> 0 !== VERSION_1) {
    throw new WireFormatError(
      `not a strict binary-protocol message (first word 0x${versionAndType.toString(16)})`,
    );
  }
  const nameLength = buf.readInt32BE(bodyStart + 4);
  return bodyStart + 8 + nameLength;
}

/** The message type (CALL, REPLY, EXCEPTION, ONEWAY) of a body starting at `bodyStart`. */
export function messageType(buf: Buffer, bodyStart: number): number {
  return buf[bodyStart + 3];
}
