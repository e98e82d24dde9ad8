/**
 * Reads a Thrift message header (name, type, seqid) straight from the frame bytes, for
 * both protocols. The main thread does this for every request, so it allocates nothing
 * but the name string and never touches the thrift library.
 */
import { ProtocolError } from '@kmux/core';

export type ThriftProtocolName = 'binary' | 'compact';

/** Thrift's TMessageType values. */
export const MessageType = { CALL: 1, REPLY: 2, EXCEPTION: 3, ONEWAY: 4 } as const;

export interface MessageHead {
  readonly name: string;
  readonly type: number;
  readonly seqid: number;
  /** Bytes the header occupies; the argument struct starts here. */
  readonly length: number;
}

/** Longest method name accepted; guards against garbage read as a huge name length. */
const MAX_NAME_BYTES = 4096;
const BINARY_VERSION_1 = 0x80010000;
const COMPACT_PROTOCOL_ID = 0x82;
const COMPACT_VERSION = 1;

export function readMessageHead(body: Buffer, protocol: ThriftProtocolName): MessageHead {
  return protocol === 'binary' ? readBinaryHead(body) : readCompactHead(body);
}

function readBinaryHead(body: Buffer): MessageHead {
  need(body, 4, 'binary');
  const first = body.readInt32BE(0);
  if (first < 0) {
    // Strict form: version word with the type in its low byte, name, seqid.
    if ((first & 0xffff0000) >>> 0 !== BINARY_VERSION_1) {
      throw new ProtocolError(`thrift binary: bad version word 0x${(first >>> 0).toString(16)}`);
    }
    const type = checkType(first & 0xff, 'binary');
    need(body, 8, 'binary');
    const nameEnd = 8 + nameLength(body.readInt32BE(4), body, 8);
    need(body, nameEnd + 4, 'binary');
    return { name: body.toString('utf8', 8, nameEnd), type, seqid: body.readInt32BE(nameEnd), length: nameEnd + 4 };
  }
  // Old non-strict form: name length, name, type byte, seqid.
  const nameEnd = 4 + nameLength(first, body, 4);
  need(body, nameEnd + 5, 'binary');
  const type = checkType(body[nameEnd]!, 'binary');
  return { name: body.toString('utf8', 4, nameEnd), type, seqid: body.readInt32BE(nameEnd + 1), length: nameEnd + 5 };
}

function readCompactHead(body: Buffer): MessageHead {
  need(body, 2, 'compact');
  if (body[0] !== COMPACT_PROTOCOL_ID) {
    throw new ProtocolError(`thrift compact: bad protocol id 0x${body[0]!.toString(16)}`);
  }
  const versionAndType = body[1]!;
  if ((versionAndType & 0x1f) !== COMPACT_VERSION) {
    throw new ProtocolError(`thrift compact: unsupported version ${versionAndType & 0x1f}`);
  }
  const type = checkType(versionAndType >> 5, 'compact');
  const seqid = readVarint32(body, 2);
  const size = readVarint32(body, seqid.end);
  const nameEnd = size.end + nameLength(size.value, body, size.end);
  return { name: body.toString('utf8', size.end, nameEnd), type, seqid: seqid.value | 0, length: nameEnd };
}

/**
 * Unsigned LEB128 of at most 5 bytes, as the compact protocol writes an i32. The value is
 * not cut to 32 bits (5 bytes hold 35): a name length past 2^32 must fail as too long, as
 * the thrift library fails it, not wrap to a small one.
 */
function readVarint32(body: Buffer, start: number): { value: number; end: number } {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    const byte = body[start + i];
    if (byte === undefined) throw new ProtocolError('thrift compact: truncated varint in message header');
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { value, end: start + i + 1 };
  }
  throw new ProtocolError('thrift compact: varint longer than 5 bytes in message header');
}

/** Validates a name length read at `start` and returns it. */
function nameLength(length: number, body: Buffer, start: number): number {
  if (length < 0 || length > MAX_NAME_BYTES || start + length > body.length) {
    throw new ProtocolError(`thrift: bad method name length ${length} in a ${body.length}-byte frame`);
  }
  return length;
}

function checkType(type: number, protocol: ThriftProtocolName): number {
  if (type < MessageType.CALL || type > MessageType.ONEWAY) {
    throw new ProtocolError(`thrift ${protocol}: bad message type ${type}`);
  }
  return type;
}

/** Throws unless the body holds at least `bytes` bytes. */
function need(body: Buffer, bytes: number, protocol: ThriftProtocolName): void {
  if (body.length < bytes) throw new ProtocolError(`thrift ${protocol}: truncated message header (${body.length} bytes)`);
}
