import { KmuxError, type ErrorKind } from '../errors.js';

/**
 * The raw codec's frame bodies (inside the 4-byte length prefix), big-endian:
 *
 *   request: id u32 | method length u8 | method (UTF-8) | payload
 *   reply:   id u32 | status u8        | payload (status OK) or UTF-8 error message
 */
export const RAW_STATUS: Readonly<Record<'ok' | ErrorKind, number>> = {
  ok: 0,
  handler: 1,
  unknown_method: 2,
  bad_request: 3,
  overloaded: 4,
  deadline_exceeded: 5,
  worker_died: 6,
  shutting_down: 7,
  protocol: 8,
  frame_too_large: 9,
  connection_closed: 10,
  transport_unavailable: 11,
};

const KIND_BY_STATUS = new Map<number, ErrorKind>(
  Object.entries(RAW_STATUS)
    .filter(([kind]) => kind !== 'ok')
    .map(([kind, status]) => [status, kind as ErrorKind]),
);

export interface RawRequest {
  readonly id: number;
  readonly method: string;
  readonly payload: Buffer;
}

export function encodeRawRequest(id: number, method: string, payload: Uint8Array): Buffer {
  const name = Buffer.from(method, 'utf8');
  if (name.length > 255) throw new RangeError(`method name longer than 255 bytes: ${method}`);
  const body = Buffer.allocUnsafe(5 + name.length + payload.length);
  body.writeUInt32BE(id >>> 0, 0);
  body.writeUInt8(name.length, 4);
  name.copy(body, 5);
  body.set(payload, 5 + name.length);
  return body;
}

/** Throws KmuxError('protocol') when the body cannot be a raw request. */
export function decodeRawRequest(body: Buffer): RawRequest {
  if (body.length < 5 || body.length < 5 + body.readUInt8(4)) {
    throw new KmuxError('protocol', `raw request frame too short (${body.length} bytes)`);
  }
  const nameEnd = 5 + body.readUInt8(4);
  return {
    id: body.readUInt32BE(0),
    method: body.toString('utf8', 5, nameEnd),
    payload: body.subarray(nameEnd),
  };
}

export function encodeRawReply(id: number, status: number, payload: Uint8Array): Buffer {
  const body = Buffer.allocUnsafe(5 + payload.length);
  body.writeUInt32BE(id >>> 0, 0);
  body.writeUInt8(status, 4);
  body.set(payload, 5);
  return body;
}

export function encodeRawError(id: number, error: KmuxError): Buffer {
  return encodeRawReply(id, RAW_STATUS[error.kind], Buffer.from(error.message, 'utf8'));
}

/** Returns the payload of an OK reply, or throws the KmuxError it carries. */
export function decodeRawReply(body: Buffer): Buffer {
  if (body.length < 5) throw new KmuxError('protocol', `raw reply frame too short (${body.length} bytes)`);
  const status = body.readUInt8(4);
  const payload = body.subarray(5);
  if (status === RAW_STATUS.ok) return payload;
  throw new KmuxError(KIND_BY_STATUS.get(status) ?? 'handler', payload.toString('utf8'));
}
