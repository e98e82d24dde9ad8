/**
 * Reads and writes the v1 envelope (proto/kmux/envelope/v1/envelope.proto) by hand, the
 * same way any protobuf library would: fields in any order, the last occurrence of a field
 * wins, unknown fields are skipped, zero values are left out when writing.
 */
import { fileURLToPath } from 'node:url';
import { ProtocolError } from '@kmux/core';
import { WireReader, WireType, expectWireType, tagOf, varintSize, writeVarint } from './wire.js';

/** Absolute path of envelope.proto, the declaration this module implements, for protoc or protobufjs. */
export const ENVELOPE_PROTO = fileURLToPath(new URL('../proto/kmux/envelope/v1/envelope.proto', import.meta.url));

/** Field numbers of `Request`. */
const REQUEST_ID = 1;
const REQUEST_METHOD = 2;
const REQUEST_DEADLINE_MS = 3;
const REQUEST_PAYLOAD = 4;
const REQUEST_METADATA = 5;
/** Field numbers of a map entry (`map<string, string>` is a repeated message of key and value). */
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;

/** Request metadata, key to value (a null-prototype object: keys are the client's). */
export type Metadata = Readonly<Record<string, string>>;
const NO_METADATA: Metadata = Object.freeze(Object.create(null) as Record<string, string>);

/** Field numbers of `Response`. */
const RESPONSE_ID = 1;
const RESPONSE_STATUS = 2;
const RESPONSE_MESSAGE = 3;
const RESPONSE_PAYLOAD = 4;

export interface RequestEnvelope {
  readonly id: number;
  readonly method: string;
  /** Relative deadline in ms; 0 for none. */
  readonly deadlineMs: number;
  readonly payload: Uint8Array;
  /** Key/value pairs beside the call, such as the trace context (`traceparent`, `tracestate`). */
  readonly metadata?: Metadata;
}

/** A request envelope as read from a frame: its payload stays in the frame, by offsets. */
export interface RequestEnvelopeHead {
  readonly id: number;
  readonly method: string;
  readonly deadlineMs: number;
  readonly payloadStart: number;
  readonly payloadEnd: number;
  readonly metadata: Metadata;
}

export interface ResponseEnvelope {
  readonly id: number;
  /** A Status code; OK (0) when the call succeeded. */
  readonly status: number;
  readonly message: string;
  readonly payload: Uint8Array;
}

/**
 * Reads a Request without touching its payload. Throws a ProtocolError when the frame is
 * not a Request: not protobuf, a field of the wrong type, or no method.
 */
export function readRequestEnvelope(body: Buffer): RequestEnvelopeHead {
  return readEnvelope('request', readRequestFields, body);
}

function readRequestFields(body: Buffer): RequestEnvelopeHead {
  const reader = new WireReader(body);
  let id = 0;
  let method = '';
  let deadlineMs = 0;
  let payloadStart = 0;
  let payloadEnd = 0;
  let metadata = NO_METADATA;
  while (!reader.done) {
    const tag = reader.tag();
    const field = tag >>> 3;
    const wireType = tag & 7;
    switch (field) {
      case REQUEST_ID:
        expectWireType('Request', field, wireType, WireType.VARINT);
        id = reader.varint32();
        break;
      case REQUEST_METHOD: {
        expectWireType('Request', field, wireType, WireType.LEN);
        const start = reader.lengthDelimited();
        method = body.toString('utf8', start, reader.pos);
        break;
      }
      case REQUEST_DEADLINE_MS:
        expectWireType('Request', field, wireType, WireType.VARINT);
        deadlineMs = reader.varint32();
        break;
      case REQUEST_PAYLOAD:
        expectWireType('Request', field, wireType, WireType.LEN);
        payloadStart = reader.lengthDelimited();
        payloadEnd = reader.pos;
        break;
      case REQUEST_METADATA: {
        expectWireType('Request', field, wireType, WireType.LEN);
        const start = reader.lengthDelimited();
        if (metadata === NO_METADATA) metadata = Object.create(null) as Record<string, string>;
        readMetadataEntry(body, start, reader.pos, metadata as Record<string, string>);
        break;
      }
      default:
        reader.skip(wireType);
    }
  }
  if (method === '') throw new ProtocolError('no method');
  return { id, method, deadlineMs, payloadStart, payloadEnd, metadata };
}

/** Reads one `metadata` map entry (bytes `start` to `end`) into `into`; a later entry for a key wins, as in any protobuf map. */
function readMetadataEntry(body: Buffer, start: number, end: number, into: Record<string, string>): void {
  const reader = new WireReader(body, start, end);
  let key = '';
  let value = '';
  while (!reader.done) {
    const tag = reader.tag();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field !== ENTRY_KEY && field !== ENTRY_VALUE) {
      reader.skip(wireType);
      continue;
    }
    expectWireType('Request.metadata entry', field, wireType, WireType.LEN);
    const at = reader.lengthDelimited();
    const text = body.toString('utf8', at, reader.pos);
    if (field === ENTRY_KEY) key = text;
    else value = text;
  }
  into[key] = value;
}

export function encodeRequestEnvelope({ id, method, deadlineMs, payload, metadata = NO_METADATA }: RequestEnvelope): Buffer {
  if (method === '') throw new RangeError('kmux envelope: a request needs a method');
  const methodBytes = Buffer.byteLength(method);
  const entries = Object.entries(metadata).map(([key, value]) => {
    const sizes = { key: Buffer.byteLength(key), value: Buffer.byteLength(value) };
    return { key, value, sizes, bytes: lengthDelimitedSize(sizes.key) + lengthDelimitedSize(sizes.value) };
  });
  const out = Buffer.allocUnsafe(
    scalarSize(id) +
      lengthDelimitedSize(methodBytes) +
      scalarSize(deadlineMs) +
      lengthDelimitedSize(payload.length) +
      entries.reduce((sum, entry) => sum + 1 + varintSize(entry.bytes) + entry.bytes, 0),
  );
  let at = writeScalar(out, 0, REQUEST_ID, id);
  at = writeString(out, at, REQUEST_METHOD, method, methodBytes);
  at = writeScalar(out, at, REQUEST_DEADLINE_MS, deadlineMs);
  at = writeBytes(out, at, REQUEST_PAYLOAD, payload);
  for (const { key, value, sizes, bytes } of entries) {
    // One entry per pair; inside it an empty key or value is left out, as proto3 writes it.
    at = writeVarint(out, writeVarint(out, at, tagOf(REQUEST_METADATA, WireType.LEN)), bytes);
    at = writeString(out, at, ENTRY_KEY, key, sizes.key);
    at = writeString(out, at, ENTRY_VALUE, value, sizes.value);
  }
  return out;
}

/** `status` is a Status code (0 to 16). */
export function encodeResponseEnvelope({ id, status, message, payload }: ResponseEnvelope): Buffer {
  const messageBytes = Buffer.byteLength(message);
  const out = Buffer.allocUnsafe(
    scalarSize(id) + scalarSize(status) + lengthDelimitedSize(messageBytes) + lengthDelimitedSize(payload.length),
  );
  let at = writeScalar(out, 0, RESPONSE_ID, id);
  at = writeScalar(out, at, RESPONSE_STATUS, status);
  at = writeString(out, at, RESPONSE_MESSAGE, message, messageBytes);
  writeBytes(out, at, RESPONSE_PAYLOAD, payload);
  return out;
}

/** Reads a Response; its payload is a view into `body`. Throws a ProtocolError on a bad frame. */
export function decodeResponseEnvelope(body: Buffer): ResponseEnvelope {
  return readEnvelope('response', readResponseFields, body);
}

function readResponseFields(body: Buffer): ResponseEnvelope {
  const reader = new WireReader(body);
  let id = 0;
  let status = 0;
  let message = '';
  let payload = body.subarray(0, 0);
  while (!reader.done) {
    const tag = reader.tag();
    const field = tag >>> 3;
    const wireType = tag & 7;
    switch (field) {
      case RESPONSE_ID:
        expectWireType('Response', field, wireType, WireType.VARINT);
        id = reader.varint32();
        break;
      case RESPONSE_STATUS:
        expectWireType('Response', field, wireType, WireType.VARINT);
        status = reader.varint32() | 0; // an enum is an int32
        break;
      case RESPONSE_MESSAGE: {
        expectWireType('Response', field, wireType, WireType.LEN);
        const start = reader.lengthDelimited();
        message = body.toString('utf8', start, reader.pos);
        break;
      }
      case RESPONSE_PAYLOAD: {
        expectWireType('Response', field, wireType, WireType.LEN);
        const start = reader.lengthDelimited();
        payload = body.subarray(start, reader.pos);
        break;
      }
      default:
        reader.skip(wireType);
    }
  }
  return { id, status, message, payload };
}

/** Runs `read`, naming the envelope in its error: the core logs it when it closes a connection. */
function readEnvelope<T>(what: 'request' | 'response', read: (body: Buffer) => T, body: Buffer): T {
  try {
    return read(body);
  } catch (error) {
    throw new ProtocolError(`not a kmux protobuf v1 ${what}: ${(error as Error).message}`, { cause: error });
  }
}

/** A varint field's size, or 0 when it holds the default and is left out. */
function scalarSize(value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

/**
 * A length-delimited field's size with its one-byte tag (every envelope field number is
 * below 16), or 0 when it is empty and left out.
 */
function lengthDelimitedSize(length: number): number {
  return length === 0 ? 0 : 1 + varintSize(length) + length;
}

function writeScalar(out: Buffer, at: number, field: number, value: number): number {
  if (value === 0) return at;
  return writeVarint(out, writeVarint(out, at, tagOf(field, WireType.VARINT)), value);
}

function writeString(out: Buffer, at: number, field: number, text: string, byteLength: number): number {
  if (byteLength === 0) return at;
  at = writeVarint(out, writeVarint(out, at, tagOf(field, WireType.LEN)), byteLength);
  return at + out.write(text, at);
}

function writeBytes(out: Buffer, at: number, field: number, bytes: Uint8Array): number {
  if (bytes.length === 0) return at;
  at = writeVarint(out, writeVarint(out, at, tagOf(field, WireType.LEN)), bytes.length);
  out.set(bytes, at);
  return at + bytes.length;
}
