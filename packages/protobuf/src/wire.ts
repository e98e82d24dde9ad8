/**
 * The few protobuf wire-format primitives the envelope needs, read and written straight
 * from frame bytes. The main thread reads every request's envelope, so this allocates
 * nothing and never goes through protobufjs.
 */
import { ProtocolError } from '@kmux/core';

export const WireType = { VARINT: 0, I64: 1, LEN: 2, START_GROUP: 3, END_GROUP: 4, I32: 5 } as const;

const MAX_VARINT_BYTES = 10;

/** A cursor over one serialized message (`bytes` from `start` to `end`). Every read throws a ProtocolError on bad input. */
export class WireReader {
  pos: number;

  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a field tag: `tag >>> 3` is the field number, `tag & 7` the wire type that follows. */
  tag(): number {
    const tag = this.varint32();
    if (tag >>> 3 === 0) throw new ProtocolError('field number 0');
    return tag;
  }

  /**
   * A varint's low 32 bits, unsigned: what protobuf makes of a uint32 field, and of an
   * int32 or enum field after `| 0`. Longer encodings (up to 10 bytes) are valid and read.
   */
  varint32(): number {
    const bytes = this.bytes;
    let pos = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (pos >= this.end) throw new ProtocolError('truncated varint');
      const byte = bytes[pos++]!;
      // Bytes past the fifth only carry bits above 32; they are consumed and dropped.
      if (i < 5) {
        value += (byte & 0x7f) * scale;
        scale *= 0x80;
      }
      if (byte < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    throw new ProtocolError('varint longer than 10 bytes');
  }

  /**
   * Reads a length-delimited field's length and skips its bytes: they start at the
   * returned offset and end where the cursor now is.
   */
  lengthDelimited(): number {
    const length = this.varint32();
    const start = this.pos;
    if (length > this.end - start) {
      throw new ProtocolError(`a ${length}-byte field overruns its message (${this.end - start} bytes left)`);
    }
    this.pos = start + length;
    return start;
  }

  /** Skips a field this reader does not know. */
  skip(wireType: number): void {
    switch (wireType) {
      case WireType.VARINT:
        this.varint32();
        return;
      case WireType.LEN:
        this.lengthDelimited();
        return;
      case WireType.I64:
        this.advance(8);
        return;
      case WireType.I32:
        this.advance(4);
        return;
      default:
        // 3 and 4 are proto2 groups, which the envelope never uses; 6 and 7 do not exist.
        throw new ProtocolError(`unsupported wire type ${wireType}`);
    }
  }

  advance(bytes: number): void {
    if (bytes > this.end - this.pos) throw new ProtocolError('truncated fixed-width field');
    this.pos += bytes;
  }
}

/** Throws unless a known field arrived with the wire type its declaration implies. */
export function expectWireType(messageName: string, field: number, actual: number, expected: number): void {
  if (actual !== expected) {
    throw new ProtocolError(`${messageName} field ${field} has wire type ${actual}, expected ${expected}`);
  }
}

/** Bytes a uint32 takes as a varint. */
export function varintSize(value: number): number {
  let size = 1;
  for (let rest = value >>> 0; rest >= 0x80; rest >>>= 7) size++;
  return size;
}

/** Writes `value` (a uint32) as a varint at `at`; returns the offset after it. */
export function writeVarint(out: Buffer, at: number, value: number): number {
  let rest = value >>> 0;
  while (rest >= 0x80) {
    out[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  out[at++] = rest;
  return at;
}

/** The tag byte(s) of field `field` with wire type `wireType` (fields 1 to 15 take one byte). */
export function tagOf(field: number, wireType: number): number {
  return ((field << 3) | wireType) >>> 0;
}
