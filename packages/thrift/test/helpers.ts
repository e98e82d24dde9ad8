// Encodes Catalog calls and decodes replies with the service's generated code and the
// stock thrift library, so the tests check kmux against Thrift's own reading of the wire.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import thrift from 'thrift';
import type { ThriftProtocolName } from '@kmux/thrift';

const require = createRequire(import.meta.url);

export const CATALOG_SERVICE = fileURLToPath(new URL('../../../examples/thrift/gen-nodejs/Catalog.js', import.meta.url));
export const FIXTURE_HANDLER = fileURLToPath(new URL('./fixtures/catalog-handler.cjs', import.meta.url));
export const PARTIAL_HANDLER = fileURLToPath(new URL('./fixtures/partial-handler.cjs', import.meta.url));

// Generated JS, typed loosely here: the tests drive it dynamically by method name.
export const Catalog: any = require(CATALOG_SERVICE);
export const catalogTypes: any = require('../../../examples/thrift/gen-nodejs/catalog_types.js');
/** What the fixture handler's oneway recordView has seen (see fixtures/catalog-handler.cjs). */
export function recordedViews(): string[] {
  return ((globalThis as { catalogFixtureViews?: string[] }).catalogFixtureViews ??= []);
}

export const PROTOCOLS: readonly ThriftProtocolName[] = ['binary', 'compact'];

export function protocolClass(protocol: ThriftProtocolName): typeof thrift.TBinaryProtocol {
  return protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol;
}

/** A buffered transport that hands each message it flushes to `sink`. */
export function capturingTransport(sink: (message: Buffer) => void): thrift.TBufferedTransport {
  return new thrift.TBufferedTransport(undefined, (message) => {
    if (message === undefined) throw new Error('TBufferedTransport flushed without a message');
    sink(message);
  });
}

/** A generated Catalog client whose flushed requests land in `sent`. */
function capturingClient(protocol: ThriftProtocolName, sent: Buffer[]) {
  return new Catalog.Client(
    capturingTransport((message) => sent.push(message)),
    protocolClass(protocol),
  );
}

/** The request message for `method(args)` with the given seqid. */
export function encodeCall(protocol: ThriftProtocolName, method: string, args: unknown[], seqid = 7): Buffer {
  const sent: Buffer[] = [];
  const client = capturingClient(protocol, sent);
  client._seqid = seqid - 1; // the generated client increments before each call
  client[method](...args, () => {});
  return sent[0]!;
}

export interface DecodedReply {
  readonly name: string;
  readonly type: number;
  readonly seqid: number;
  readonly error: unknown;
  readonly value: unknown;
}

/** Reads a reply the way the generated client does: result, declared exception or TApplicationException. */
export function decodeReply(protocol: ThriftProtocolName, method: string, reply: Buffer): DecodedReply {
  const client = capturingClient(protocol, []);
  const input = new (protocolClass(protocol))(new thrift.TFramedTransport(reply));
  const head = input.readMessageBegin();
  let outcome: { error: unknown; value: unknown } | undefined;
  client._reqs[head.rseqid] = (error: unknown, value: unknown) => (outcome = { error, value });
  client[`recv_${method}`](input, head.mtype, head.rseqid);
  return { name: head.fname, type: head.mtype, seqid: head.rseqid, ...outcome! };
}

/** Reads an EXCEPTION message into the library's TApplicationException. */
export function decodeApplicationException(protocol: ThriftProtocolName, reply: Buffer) {
  const input = new (protocolClass(protocol))(new thrift.TFramedTransport(reply));
  const head = input.readMessageBegin();
  const exception = new thrift.Thrift.TApplicationException();
  exception.read(input);
  return { name: head.fname, type: head.mtype, seqid: head.rseqid, exception: exception as unknown as { type: number; message: string } };
}
