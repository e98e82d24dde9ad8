/**
 * THeader framing (Apache Thrift's doc/specs/HeaderFormat.md; what fbthrift clients and
 * Envoy's thrift_proxy speak): a frame whose body starts with the magic 0x0FFF, then flags,
 * a sequence number, key/value headers, and the message in binary or compact. Detected per
 * frame, beside plain framed messages; replies go back in the same framing.
 *
 *   magic u16 | flags u16 | seqid u32 | header words u16 | header (words × 4 bytes) | message
 *   header: protocol id varint | transform count varint | transforms | info blocks, zero padded
 *   info block 1 (key/value): count varint | count × (key, value), each a varint length + bytes
 */
import { ProtocolError } from '@kmux/core';
import type { ThriftProtocolName } from './message-head.js';

const MAGIC = 0x0fff;
const FIXED_BYTES = 10;
const INFO_KEY_VALUE = 1;
const PROTOCOL_IDS: Record<ThriftProtocolName, number> = { binary: 0, compact: 2 };
/** The header fbthrift clients send their timeout in, in milliseconds. */
export const CLIENT_TIMEOUT_HEADER = 'client_timeout';

/** What a reply repeats of its request's THeader. */
export interface THeaderEnvelope {
  readonly flags: number;
  readonly seqid: number;
  readonly protocolId: number;
}

export interface THeaderFrame extends THeaderEnvelope {
  readonly headers: Readonly<Record<string, string>>;
  /** Where the Thrift message starts in the frame body. */
  readonly messageStart: number;
}

export function isTHeader(body: Buffer): boolean {
  return body.length >= 2 && body.readUInt16BE(0) === MAGIC;
}

export function readTHeader(body: Buffer, protocol: ThriftProtocolName): THeaderFrame {
  if (body.length < FIXED_BYTES) throw new ProtocolError(`thrift THeader: truncated (${body.length} bytes)`);
  const flags = body.readUInt16BE(2);
  const seqid = body.readInt32BE(4);
  const messageStart = FIXED_BYTES + body.readUInt16BE(8) * 4;
  if (messageStart > body.length) throw new ProtocolError(`thrift THeader: header of ${messageStart} bytes in a ${body.length}-byte frame`);
  const reader = new HeaderReader(body, FIXED_BYTES, messageStart);
  const protocolId = reader.varint();
  if (protocolId !== PROTOCOL_IDS[protocol]) {
    throw new ProtocolError(`thrift THeader: protocol id ${protocolId}, but this server speaks ${protocol} (${PROTOCOL_IDS[protocol]})`);
  }
  if (reader.varint() !== 0) throw new ProtocolError('thrift THeader: transforms (zlib, snappy, ...) are not supported');
  const headers: Record<string, string> = {};
  // Info blocks run to the end of the header; a zero (padding) ends them early.
  while (!reader.atEnd()) {
    const type = reader.varint();
    if (type !== INFO_KEY_VALUE) break;
    for (let count = reader.varint(); count > 0; count--) headers[reader.string()] = reader.string();
  }
  return { flags, seqid, protocolId, headers, messageStart };
}

/** A THeader frame body (without the length prefix) carrying `message`, answering a request framed as `envelope`. */
export function encodeTHeader({ flags, seqid, protocolId }: THeaderEnvelope, message: Buffer): Buffer {
  const header = Buffer.from([protocolId, 0, 0, 0]); // protocol id, no transforms, padding (ids are < 128)
  const out = Buffer.allocUnsafe(FIXED_BYTES + header.length + message.length);
  out.writeUInt16BE(MAGIC, 0);
  out.writeUInt16BE(flags, 2);
  out.writeInt32BE(seqid, 4);
  out.writeUInt16BE(header.length / 4, 8);
  header.copy(out, FIXED_BYTES);
  message.copy(out, FIXED_BYTES + header.length);
  return out;
}

/** The request's deadline from its client_timeout header, in ms; undefined when absent or not a positive integer. */
export function clientTimeoutMs(headers: Readonly<Record<string, string>>): number | undefined {
  const value = headers[CLIENT_TIMEOUT_HEADER];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  const ms = Number(value);
  return ms > 0 ? ms : undefined;
}

class HeaderReader {
  constructor(
    private readonly body: Buffer,
    private at: number,
    private readonly end: number,
  ) {}

  atEnd(): boolean {
    return this.at >= this.end;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.at >= this.end) throw new ProtocolError('thrift THeader: truncated header');
      const byte = this.body[this.at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new ProtocolError('thrift THeader: varint longer than 5 bytes');
  }

  string(): string {
    const length = this.varint();
    if (this.at + length > this.end) throw new ProtocolError('thrift THeader: a header string runs past the header');
    const text = this.body.toString('utf8', this.at, this.at + length);
    this.at += length;
    return text;
  }
}
