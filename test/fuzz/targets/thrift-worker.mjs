/**
 * Fuzz target: the Thrift worker codec (packages/thrift/src/worker-codec.ts and what it
 * drives: dispatcher, pending call, the generated Catalog Processor and the thrift
 * library's protocols) serving the example Catalog service. Options: { protocol }.
 *
 * Properties, for any request frame body:
 * - handle() never throws, and settles within the per-input bound; its result is
 *   exactly { reply: Buffer | null, failed: boolean };
 * - a reply parses as a whole Thrift message, by the stock library: a REPLY (read by the
 *   generated client's recv_<method>) or an EXCEPTION (a TApplicationException), with no
 *   byte left over; an EXCEPTION is a failure;
 * - its name and seqid are the request's (seqid 0 and an empty name only when the request
 *   head itself is unreadable, which the main thread never lets through);
 * - a CALL always gets a reply, unless it names a oneway method (stock Thrift behaviour);
 *   a request whose type is REPLY or EXCEPTION gets INVALID_MESSAGE_TYPE.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { assert, handleChecked } from '../lib/worker-result.mjs';

const EXAMPLE_DIR = fileURLToPath(new URL('../../../examples/thrift/', import.meta.url));
const HANDLER = fileURLToPath(new URL('../fixtures/catalog-bounded-handler.cjs', import.meta.url));
export const coverage = [
  'packages/thrift/dist/',
  'thrift/lib/nodejs/lib/thrift/binary_protocol.js',
  'thrift/lib/nodejs/lib/thrift/compact_protocol.js',
  'thrift/lib/nodejs/lib/thrift/framed_transport.js',
  'examples/thrift/gen-nodejs/',
  'examples/thrift/handler.js',
];
export const maxLen = 16 * 1024;
export const ints = [4096, 4097, 65536, 10_000_000, 10_000_001];
// Thrift type ids, field headers, message heads: the mutator splices these in.
export const dictionary = [
  Buffer.from([0x80, 0x01, 0x00, 0x01]),
  Buffer.from([0x80, 0x01, 0x00, 0x04]),
  Buffer.from([0x82, 0x21]),
  Buffer.from([0x82, 0x81]),
  Buffer.from([0x0b, 0x00, 0x01]),
  Buffer.from([0x08, 0x00, 0x02]),
  Buffer.from([0x0c, 0x00, 0x01]),
  Buffer.from([0x0f, 0x00, 0x04, 0x0b]),
  Buffer.from([0x02, 0x00, 0x02, 0x01]),
  Buffer.from([0x18]),
  Buffer.from([0x15]),
  Buffer.from([0x1c]),
  Buffer.from([0x19, 0x28]),
  Buffer.from([0x00]),
  ...['lookup', 'hashRounds', 'echo', 'sleep', 'recordView', 'kb-001'].map((s) => Buffer.from(s)),
];

const ONEWAY_METHODS = new Set(['recordView']);
const TWO_WAY_METHODS = new Set(['lookup', 'hashRounds', 'echo', 'sleep']);

let thrift;
let Catalog;
let catalogTypes;
let readMessageHead;
let codec;

export async function setup({ protocol }) {
  const requireExample = createRequire(EXAMPLE_DIR);
  thrift = requireExample('thrift');
  Catalog = requireExample('./gen-nodejs/Catalog.js');
  catalogTypes = requireExample('./gen-nodejs/catalog_types.js');
  let thriftCodec;
  ({ readMessageHead, thriftCodec } = await import('@kmux/thrift'));
  // The worker half, built as a kmux worker builds it: from the codec's worker spec.
  const { worker } = thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: HANDLER, protocol });
  const { createWorkerCodec } = await import(worker.module);
  codec = await createWorkerCodec(worker.options);
}

function Protocol(protocol) {
  return protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol;
}

/** Requests encoded by the generated client: every method, ordinary and edge arguments. */
export function seeds({ protocol }) {
  const calls = [
    ['lookup', [new catalogTypes.Query({ sku: 'kb-001', withThumbnail: true })]],
    ['lookup', [new catalogTypes.Query({ sku: 'zz-999' })]],
    ['hashRounds', [Buffer.from('data'), 3]],
    ['hashRounds', [Buffer.from('data'), 0]],
    ['echo', [Buffer.from('hello')]],
    ['echo', [Buffer.alloc(0)]],
    ['sleep', [1]],
    ['recordView', ['kb-001']],
  ];
  const encoded = calls.map(([method, args], i) => {
    const sent = [];
    const transport = new thrift.TBufferedTransport(undefined, (message) => sent.push(message));
    const client = new Catalog.Client(transport, Protocol(protocol));
    client._seqid = 40 + i;
    client[method](...args, () => {});
    return Buffer.concat(sent);
  });
  // The same echo call with its message type changed: ONEWAY, REPLY, EXCEPTION.
  const echo = encoded[4];
  const retyped = [4, 2, 3].map((type) => {
    const copy = Buffer.from(echo);
    if (protocol === 'binary') copy[3] = type;
    else copy[1] = (type << 5) | 1;
    return copy;
  });
  return [...encoded, ...retyped];
}

function headOf(body, protocol) {
  try {
    return readMessageHead(body, protocol);
  } catch {
    return null;
  }
}

/** Reads a reply with the stock library and the generated client; throws if it is not a whole valid message. */
function readReply(reply, protocol) {
  const transport = new thrift.TFramedTransport(reply);
  const input = new (Protocol(protocol))(transport);
  const head = input.readMessageBegin();
  const name = typeof head.fname === 'string' ? head.fname : head.fname.toString();
  if (head.mtype === thrift.Thrift.MessageType.EXCEPTION) {
    const exception = new thrift.Thrift.TApplicationException();
    exception.read(input);
    input.readMessageEnd();
    assert(typeof exception.message === 'string' && Number.isInteger(exception.type), `exception without message or type`);
  } else {
    assert(head.mtype === thrift.Thrift.MessageType.REPLY, `reply of message type ${head.mtype}`);
    assert(TWO_WAY_METHODS.has(name), `a REPLY for method '${name}'`);
    const client = new Catalog.Client(new thrift.TBufferedTransport(undefined, () => {}), Protocol(protocol));
    client._reqs[head.rseqid] = () => {};
    client[`recv_${name}`](input, head.mtype, head.rseqid);
  }
  assert(transport.readPos === reply.length, `reply has ${reply.length - transport.readPos} bytes after the message`);
  return { name, type: head.mtype, seqid: Number(head.rseqid) | 0 };
}

export async function check(body, { protocol }) {
  const result = await handleChecked(codec, body);

  const request = headOf(body, protocol);
  if (result.reply === null) {
    assert(request !== null, 'no reply to an unreadable request');
    const onewayMethod = ONEWAY_METHODS.has(request.name);
    assert(request.type === 4 || (request.type === 1 && onewayMethod), `no reply to a message of type ${request.type} for '${request.name}'`);
    return;
  }
  let reply;
  try {
    reply = readReply(Buffer.from(result.reply), protocol);
  } catch (error) {
    throw new Error(`reply does not parse as a Thrift message: ${error?.stack ?? error}\nreply: ${Buffer.from(result.reply).toString('hex')}`);
  }
  if (reply.type === 3) assert(result.failed, 'an EXCEPTION reply not marked failed');
  if (request === null) {
    assert(reply.type === 3 && reply.seqid === 0 && reply.name === '', `unreadable request answered with ${JSON.stringify(reply)}`);
    return;
  }
  assert(reply.seqid === request.seqid, `reply seqid ${reply.seqid}, request seqid ${request.seqid}`);
  assert(reply.name === request.name, `reply name '${reply.name}', request name '${request.name}'`);
  if (request.type === 2 || request.type === 3) assert(reply.type === 3, `a message of type ${request.type} answered with type ${reply.type}`);
}
