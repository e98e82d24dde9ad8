/**
 * Finds where an unframed Thrift message ends by walking its structure: the header, then
 * the argument struct field by field, skipping values by their wire sizes. This is how a
 * server serves clients on Thrift's default (buffered, unframed) transport without
 * decoding the arguments in the main thread. Nothing is allocated but the result.
 */
import { ProtocolError, type MessageExtent, type UnframedMessages } from '@kmux/core';
import type { ThriftProtocolName } from './message-head.js';

/** Deeper nesting than any real IDL; guards the walk's recursion against crafted input. */
const MAX_DEPTH = 64;
const MAX_NAME_BYTES = 4096;

/** The first byte of an unframed message: binary's strict version word, compact's protocol id. */
const FIRST_BYTE: Record<ThriftProtocolName, number> = { binary: 0x80, compact: 0x82 };

/** Thrown inside a walk that ran out of bytes; carries how many the message needs at least. */
class NeedMore {
  constructor(readonly atLeast: number) {}
}

export function unframedMessages(protocol: ThriftProtocolName): UnframedMessages {
  const walk = protocol === 'binary' ? binaryMessage : compactMessage;
  return {
    // No frame within maxFrameBytes (< 2^31) has a length prefix starting with 0x80 or 0x82.
    startsMessage: (firstByte) => firstByte === FIRST_BYTE[protocol],
    refusal: 'unframed Thrift: use TFramedTransport (the buffered transport sends no length prefix, which kernel framing needs)',
    measure(bytes: Buffer): MessageExtent {
      try {
        return { complete: true, length: walk(new Cursor(bytes)) };
      } catch (error) {
        if (error instanceof NeedMore) return { complete: false, atLeast: error.atLeast };
        throw error;
      }
    },
  };
}

class Cursor {
  at = 0;
  constructor(readonly bytes: Buffer) {}

  /** Moves past `count` bytes, returning where they start; throws NeedMore past the end. */
  take(count: number): number {
    const start = this.at;
    this.at += count;
    if (this.at > this.bytes.length) throw new NeedMore(this.at);
    return start;
  }

  byte(): number {
    return this.bytes[this.take(1)]!;
  }

  int32(): number {
    return this.bytes.readInt32BE(this.take(4));
  }

  /** Unsigned LEB128 of at most 10 bytes (compact's i64), its value only as far as sizes need. */
  varint(): number {
    let value = 0;
    for (let i = 0; i < 10; i++) {
      const byte = this.byte();
      if (i < 5) value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) return value;
    }
    throw new ProtocolError('thrift compact: varint longer than 10 bytes');
  }

  /** A size or count: non-negative, and within what a 32-bit length can say. */
  size(value: number, what: string): number {
    if (value < 0 || value > 0x7fffffff) throw new ProtocolError(`thrift: bad ${what} ${value}`);
    return value;
  }
}

// --- binary -------------------------------------------------------------------------

const BINARY_FIXED: Readonly<Record<number, number>> = { 2: 1, 3: 1, 4: 8, 6: 2, 8: 4, 10: 8, 16: 16 };
const B_STRING = 11;
const B_STRUCT = 12;
const B_MAP = 13;
const B_SET = 14;
const B_LIST = 15;

function binaryMessage(cursor: Cursor): number {
  const version = cursor.int32();
  if ((version & 0xffff0000) >>> 0 !== 0x80010000) {
    throw new ProtocolError(`thrift binary: bad version word 0x${(version >>> 0).toString(16)}`);
  }
  const nameLength = cursor.int32();
  if (nameLength < 0 || nameLength > MAX_NAME_BYTES) throw new ProtocolError(`thrift: bad method name length ${nameLength}`);
  cursor.take(nameLength + 4); // name, seqid
  binaryValue(cursor, B_STRUCT, 0);
  return cursor.at;
}

function binaryValue(cursor: Cursor, type: number, depth: number): void {
  const fixed = BINARY_FIXED[type];
  if (fixed !== undefined) {
    cursor.take(fixed);
    return;
  }
  if (depth >= MAX_DEPTH) throw new ProtocolError(`thrift binary: nested deeper than ${MAX_DEPTH}`);
  switch (type) {
    case B_STRING:
      cursor.take(cursor.size(cursor.int32(), 'string length'));
      return;
    case B_STRUCT:
      for (let fieldType = cursor.byte(); fieldType !== 0; fieldType = cursor.byte()) {
        cursor.take(2); // field id
        binaryValue(cursor, fieldType, depth + 1);
      }
      return;
    case B_MAP: {
      const keyType = cursor.byte();
      const valueType = cursor.byte();
      binaryElements(cursor, [keyType, valueType], cursor.size(cursor.int32(), 'map size'), depth);
      return;
    }
    case B_SET:
    case B_LIST: {
      const elementType = cursor.byte();
      binaryElements(cursor, [elementType], cursor.size(cursor.int32(), 'list size'), depth);
      return;
    }
    default:
      throw new ProtocolError(`thrift binary: bad field type ${type}`);
  }
}

function binaryElements(cursor: Cursor, types: number[], count: number, depth: number): void {
  const fixed = types.map((type) => BINARY_FIXED[type]);
  if (fixed.every((size) => size !== undefined)) {
    // Fixed-size elements are skipped in one step, so a huge count fails the size limit at once.
    cursor.take(count * fixed.reduce((sum, size) => sum + size, 0));
    return;
  }
  for (let i = 0; i < count; i++) for (const type of types) binaryValue(cursor, type, depth + 1);
}

// --- compact ------------------------------------------------------------------------

const C_BOOL_TRUE = 1;
const C_BOOL_FALSE = 2;
const C_BYTE = 3;
const C_I16 = 4;
const C_I32 = 5;
const C_I64 = 6;
const C_DOUBLE = 7;
const C_BINARY = 8;
const C_LIST = 9;
const C_SET = 10;
const C_MAP = 11;
const C_STRUCT = 12;
const C_UUID = 13;

function compactMessage(cursor: Cursor): number {
  cursor.take(2); // protocol id (checked by startsMessage), version and type
  if ((cursor.bytes[1]! & 0x1f) !== 1) throw new ProtocolError(`thrift compact: unsupported version ${cursor.bytes[1]! & 0x1f}`);
  cursor.varint(); // seqid
  const nameLength = cursor.varint();
  if (nameLength > MAX_NAME_BYTES) throw new ProtocolError(`thrift: bad method name length ${nameLength}`);
  cursor.take(nameLength);
  compactValue(cursor, C_STRUCT, 0, false);
  return cursor.at;
}

/** `inContainer`: a bool there takes a byte; as a field, its value is in the field header. */
function compactValue(cursor: Cursor, type: number, depth: number, inContainer: boolean): void {
  switch (type) {
    case C_BOOL_TRUE:
    case C_BOOL_FALSE:
      if (inContainer) cursor.take(1);
      return;
    case C_BYTE:
      cursor.take(1);
      return;
    case C_I16:
    case C_I32:
    case C_I64:
      cursor.varint();
      return;
    case C_DOUBLE:
      cursor.take(8);
      return;
    case C_UUID:
      cursor.take(16);
      return;
    case C_BINARY:
      cursor.take(cursor.size(cursor.varint(), 'binary length'));
      return;
  }
  if (depth >= MAX_DEPTH) throw new ProtocolError(`thrift compact: nested deeper than ${MAX_DEPTH}`);
  switch (type) {
    case C_STRUCT:
      for (let header = cursor.byte(); header !== 0; header = cursor.byte()) {
        if ((header & 0xf0) === 0) cursor.varint(); // a long field id delta: the id itself, zigzag
        compactValue(cursor, header & 0x0f, depth + 1, false);
      }
      return;
    case C_LIST:
    case C_SET: {
      const header = cursor.byte();
      const count = header >> 4 === 15 ? cursor.size(cursor.varint(), 'list size') : header >> 4;
      compactElements(cursor, [header & 0x0f], count, depth);
      return;
    }
    case C_MAP: {
      const count = cursor.size(cursor.varint(), 'map size');
      if (count === 0) return;
      const types = cursor.byte();
      compactElements(cursor, [types >> 4, types & 0x0f], count, depth);
      return;
    }
    default:
      throw new ProtocolError(`thrift compact: bad field type ${type}`);
  }
}

function compactElements(cursor: Cursor, types: number[], count: number, depth: number): void {
  // Every element takes at least a byte: ask for that much first, so a huge count fails the size limit at once.
  if (cursor.at + count * types.length > cursor.bytes.length) throw new NeedMore(cursor.at + count * types.length);
  for (let i = 0; i < count; i++) for (const type of types) compactValue(cursor, type, depth + 1, true);
}
