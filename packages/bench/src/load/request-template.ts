import thrift from 'thrift';
import { FRAME_HEADER_BYTES, seqidOffset } from './thrift-wire.js';

/**
 * A Thrift-generated service client class (gen-nodejs `Service.Client`): it has a
 * `send_<method>(...args)` that writes one CALL to its output transport.
 */
export type GeneratedClientClass = new (
  output: thrift.TTransport,
  protocol: thrift.TProtocolConstructor,
) => object;

/**
 * One request, encoded once as a framed binary-protocol CALL. The generator copies
 * `frame` for every send and only overwrites the 4 seqid bytes at `seqidAt`.
 */
export interface RequestTemplate {
  /** Label for reports, usually the method name. */
  readonly label: string;
  readonly frame: Buffer;
  readonly seqidAt: number;
  /** Relative share of sends in a mix of templates (a positive integer). */
  readonly weight: number;
}

export interface CallSpec {
  readonly method: string;
  readonly args: readonly unknown[];
  readonly weight?: number;
  readonly label?: string;
}

/** Encodes a call with the generated client's own `send_<method>`, capturing the frame. */
export function encodeCall(Client: GeneratedClientClass, call: CallSpec): RequestTemplate {
  let frame: Buffer | undefined;
  const transport = new thrift.TFramedTransport(undefined, (framed) => {
    frame = framed;
  });
  const client = new Client(transport, thrift.TBinaryProtocol) as Record<string, unknown>;
  const send = client[`send_${call.method}`];
  if (typeof send !== 'function') throw new Error(`the generated client has no method ${call.method}`);
  send.apply(client, call.args);
  if (frame === undefined) throw new Error(`encoding ${call.method} produced no frame`);
  return {
    label: call.label ?? call.method,
    frame,
    seqidAt: seqidOffset(frame, FRAME_HEADER_BYTES),
    weight: call.weight ?? 1,
  };
}
