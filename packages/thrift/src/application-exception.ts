/**
 * Writes a whole EXCEPTION message carrying a TApplicationException, by hand for both
 * protocols. The main thread uses it for the errors the core raises itself, and workers
 * use it for failures outside the handler's declared exceptions. (The thrift library's
 * own TApplicationException.write omits the type field, since it writes `this.code`.)
 */
import type { ErrorKind, KmuxError, WorkerResult } from '@kmux/core';
import type { CallOutcome } from '@kmux/core/worker';
import { MessageType, type MessageHead, type ThriftProtocolName } from './message-head.js';

/** Thrift's TApplicationExceptionType values. */
export const ApplicationExceptionType = {
  UNKNOWN: 0,
  UNKNOWN_METHOD: 1,
  INVALID_MESSAGE_TYPE: 2,
  INTERNAL_ERROR: 6,
  PROTOCOL_ERROR: 7,
} as const;

/** A worker's result, with how the call ended for its span when that was not a plain REPLY. */
export interface ThriftResult extends WorkerResult {
  readonly outcome?: CallOutcome;
}

const TYPE_NAMES = new Map<number, string>(Object.entries(ApplicationExceptionType).map(([name, type]) => [type, name]));

/**
 * A call answered with a TApplicationException: its type's name is both `rpc.status_code`
 * and `error.type`, as the RPC conventions ask of a status that is an error.
 */
export function applicationExceptionOutcome(type: number, message: string): CallOutcome {
  const name = TYPE_NAMES.get(type) ?? 'UNKNOWN';
  return { statusCode: name, errorType: name, message };
}

export interface ApplicationError {
  readonly type: number;
  readonly message: string;
}

/** Maps a kmux failure onto the TApplicationException a Thrift client understands. */
export function applicationErrorFor(error: KmuxError): ApplicationError {
  // The fallbacks cover kinds added by a newer @kmux/core than this package was built against.
  return {
    type: TYPE_OF_KIND[error.kind] ?? ApplicationExceptionType.INTERNAL_ERROR,
    message: (MESSAGE_PREFIX[error.kind] ?? '') + error.message,
  };
}

const TYPE_OF_KIND: Record<ErrorKind, number> = {
  frame_too_large: ApplicationExceptionType.PROTOCOL_ERROR,
  protocol: ApplicationExceptionType.PROTOCOL_ERROR,
  bad_request: ApplicationExceptionType.PROTOCOL_ERROR,
  unknown_method: ApplicationExceptionType.UNKNOWN_METHOD,
  overloaded: ApplicationExceptionType.INTERNAL_ERROR,
  deadline_exceeded: ApplicationExceptionType.INTERNAL_ERROR,
  worker_died: ApplicationExceptionType.INTERNAL_ERROR,
  handler: ApplicationExceptionType.INTERNAL_ERROR,
  shutting_down: ApplicationExceptionType.INTERNAL_ERROR,
  connection_closed: ApplicationExceptionType.INTERNAL_ERROR,
  transport_unavailable: ApplicationExceptionType.INTERNAL_ERROR,
};

/** Thrift clients only see type and message, so the message names the kmux kind. */
const MESSAGE_PREFIX: Record<ErrorKind, string> = {
  frame_too_large: '',
  protocol: '',
  bad_request: 'bad request: ',
  unknown_method: '',
  overloaded: 'overloaded, retry later: ',
  deadline_exceeded: 'deadline exceeded: ',
  worker_died: 'worker died: ',
  handler: '',
  shutting_down: 'shutting down: ',
  connection_closed: '',
  transport_unavailable: '',
};

/** The EXCEPTION message for request `name`/`seqid`, without the frame length prefix. */
export function encodeApplicationException(
  protocol: ThriftProtocolName,
  name: string,
  seqid: number,
  error: ApplicationError,
): Buffer {
  return protocol === 'binary' ? encodeBinary(name, seqid, error) : encodeCompact(name, seqid, error);
}

/** A worker's failed result: the EXCEPTION message answering `head`. */
export function exceptionResult(protocol: ThriftProtocolName, head: Pick<MessageHead, 'name' | 'seqid'>, type: number, message: string): ThriftResult {
  return {
    reply: encodeApplicationException(protocol, head.name, head.seqid, { type, message }),
    failed: true,
    outcome: applicationExceptionOutcome(type, message),
  };
}

/** A oneway call that failed: no reply is owed, but its span says why. */
export function onewayFailure(type: number, message: string): ThriftResult {
  return { reply: null, failed: true, outcome: applicationExceptionOutcome(type, message) };
}

const BINARY_TYPE_STRING = 11;
const BINARY_TYPE_I32 = 8;

function encodeBinary(name: string, seqid: number, { type, message }: ApplicationError): Buffer {
  const nameBytes = Buffer.byteLength(name);
  const messageBytes = Buffer.byteLength(message);
  const out = Buffer.allocUnsafe(4 + 4 + nameBytes + 4 + (3 + 4 + messageBytes) + (3 + 4) + 1);
  let at = out.writeInt32BE(0x80010000 | MessageType.EXCEPTION, 0);
  at = out.writeInt32BE(nameBytes, at);
  at += out.write(name, at);
  at = out.writeInt32BE(seqid, at);
  at = out.writeUInt8(BINARY_TYPE_STRING, at); // field 1: message
  at = out.writeInt16BE(1, at);
  at = out.writeInt32BE(messageBytes, at);
  at += out.write(message, at);
  at = out.writeUInt8(BINARY_TYPE_I32, at); // field 2: type
  at = out.writeInt16BE(2, at);
  at = out.writeInt32BE(type, at);
  out.writeUInt8(0, at); // field stop
  return out;
}

const COMPACT_PROTOCOL_ID = 0x82;
const COMPACT_VERSION = 1;
/** Compact field headers: field-id delta in the high nibble, compact type in the low. */
const COMPACT_FIELD_1_BINARY = 0x18;
const COMPACT_FIELD_2_I32 = 0x15;

function encodeCompact(name: string, seqid: number, { type, message }: ApplicationError): Buffer {
  const nameBuf = Buffer.from(name);
  const messageBuf = Buffer.from(message);
  const zigzagType = ((type << 1) ^ (type >> 31)) >>> 0;
  return Buffer.concat([
    Buffer.from([COMPACT_PROTOCOL_ID, (MessageType.EXCEPTION << 5) | COMPACT_VERSION]),
    varint(seqid >>> 0),
    varint(nameBuf.length),
    nameBuf,
    Buffer.from([COMPACT_FIELD_1_BINARY]),
    varint(messageBuf.length),
    messageBuf,
    Buffer.from([COMPACT_FIELD_2_I32]),
    varint(zigzagType),
    Buffer.from([0]), // field stop
  ]);
}

/** Unsigned LEB128 of a uint32. */
function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}
