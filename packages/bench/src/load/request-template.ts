import thrift from 'thrift';
import { encodeRequestEnvelope, type loadService } from '@kmux/protobuf';

/**
 * A Thrift-generated service client class (gen-nodejs `Service.Client`): it has a
 * `send_<method>(...args)` that writes one CALL to its output transport.
 */
export type GeneratedClientClass = new (
  output: thrift.TTransport,
  protocol: thrift.TProtocolConstructor,
) => object;

/** A protobuf service as @kmux/protobuf's loadService returns it. */
export type ProtobufService = Awaited<ReturnType<typeof loadService>>;

/**
 * One request, encoded once as a length-prefixed frame. The generator copies `frame` for
 * every send and only overwrites the request id at `idAt`: 4 big-endian bytes (the Thrift
 * seqid) or a 5-byte varint (the protobuf envelope's id, field 1).
 */
export interface RequestTemplate {
  /** Label for reports, usually the method name. */
  readonly label: string;
  readonly frame: Buffer;
  readonly idAt: number;
  /** Relative share of sends in a mix of templates (a positive integer). */
  readonly weight: number;
}

/** A call in Thrift terms (the Catalog IDL's method and positional arguments). */
export interface CallSpec {
  readonly method: string;
  readonly args: readonly unknown[];
  readonly weight?: number;
  readonly label?: string;
}

const FRAME_HEADER_BYTES = 4;
const THRIFT_VERSION_1 = 0x80010000;

/** Encodes a call with the generated client's own `send_<method>` (framed, binary protocol). */
export function encodeThriftCall(Client: GeneratedClientClass, call: CallSpec): RequestTemplate {
  let frame: Buffer | undefined;
  const transport = new thrift.TFramedTransport(undefined, (framed) => {
    frame = framed;
  });
  const client = new Client(transport, thrift.TBinaryProtocol) as Record<string, unknown>;
  const send = client[`send_${call.method}`];
  if (typeof send !== 'function') throw new Error(`the generated client has no method ${call.method}`);
  send.apply(client, call.args);
  if (frame === undefined) throw new Error(`encoding ${call.method} produced no frame`);
  // Strict binary message: version|type (4), name length (4), name, seqid.
  if ((frame.readUInt32BE(FRAME_HEADER_BYTES) & 0xffff0000) >>> 0 !== THRIFT_VERSION_1) {
    throw new Error(`${call.method} did not encode as a strict binary-protocol message`);
  }
  const idAt = FRAME_HEADER_BYTES + 8 + frame.readInt32BE(FRAME_HEADER_BYTES + 4);
  return { label: call.label ?? call.method, frame, idAt, weight: call.weight ?? 1 };
}

/**
 * Encodes the same call for a kmux protobuf service (WIRE.md) whose methods mirror the
 * Thrift IDL: `echo` → `Echo`, and the Thrift arguments fill the request message's fields
 * in field-number order. The id goes first, as a 5-byte varint (longer than minimal, which
 * protobuf allows), so any id can be patched in place.
 */
export function encodeProtobufCall(service: ProtobufService, call: CallSpec): RequestTemplate {
  const name = call.method[0]!.toUpperCase() + call.method.slice(1);
  const method = service.methods[name];
  if (method === undefined) throw new Error(`${service.fullName} has no method ${name}`);
  const type = method.resolvedRequestType!;
  const fields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
  const message = Object.fromEntries(call.args.map((arg, i) => [fields[i]!.name, arg]));
  const payload = type.encode(type.fromObject(message)).finish();
  const rest = encodeRequestEnvelope({ id: 0, method: name, deadlineMs: 0, payload });
  const idField = Buffer.from([0x08, 0x80, 0x80, 0x80, 0x80, 0x00]);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + idField.length + rest.length);
  frame.writeUInt32BE(frame.length - FRAME_HEADER_BYTES, 0);
  idField.copy(frame, FRAME_HEADER_BYTES);
  rest.copy(frame, FRAME_HEADER_BYTES + idField.length);
  return { label: call.label ?? call.method, frame, idAt: FRAME_HEADER_BYTES + 1, weight: call.weight ?? 1 };
}
