/**
 * Fuzz target: the protobuf worker codec (packages/protobuf/src/dispatcher.ts and what it
 * drives: envelope, message check, protobufjs, the example Pricing handler) serving the
 * example Pricing service.
 *
 * Properties, for any request frame body:
 * - handle() never throws, and settles within the per-input bound; its result is
 *   exactly { reply: Buffer, failed: boolean };
 * - the reply is a whole Response envelope with the request's id (0 when the request
 *   envelope itself is unreadable, which the main thread never lets through), failed
 *   exactly when its status is not OK;
 * - an OK reply's payload is the method's response message, read by protobufjs's
 *   bounds-checked array reader;
 * - a request payload that reader cannot decode — a string, bytes or message field that
 *   declares more bytes than its message has left among them — is answered
 *   INVALID_ARGUMENT "cannot decode", never run (protobufjs's Buffer reader, which the
 *   worker gets, cuts such a string short instead of failing).
 */
import { fileURLToPath } from 'node:url';
import { assert, handleChecked } from '../lib/worker-result.mjs';

const SCHEMA = fileURLToPath(new URL('../../../examples/protobuf/pricing.json', import.meta.url));
const HANDLER = fileURLToPath(new URL('../fixtures/pricing-bounded-handler.mjs', import.meta.url));
const SERVICE = 'kmux.example.v1.Pricing';
export const coverage = ['packages/protobuf/dist/', 'protobufjs/src/', 'examples/protobuf/handler.mjs'];
export const maxLen = 4 * 1024;
export const ints = [60_000, 1_000_000, 10_000, 0x7fffffff];
// Envelope and payload tags, method names, skus: the mutator splices these in.
export const dictionary = [
  Buffer.from([0x08]),
  Buffer.from([0x12]),
  Buffer.from([0x1a]),
  Buffer.from([0x22]),
  Buffer.from([0x0a]),
  Buffer.from([0x10]),
  Buffer.from([0x0a, 0x07]),
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
  ...['GetPrice', 'QuoteBasket', 'Echo', 'Sleep', 'kb-001', 'ms-002'].map((s) => Buffer.from(s)),
];

const STATUS_OK = 0;
const INVALID_ARGUMENT = 3;

let pb;
let service;
let codec;

export async function setup() {
  pb = await import('@kmux/protobuf');
  service = await pb.loadService(SCHEMA, SERVICE);
  // Not a public export of @kmux/protobuf: the module every kmux worker loads (see protobufCodec).
  const { createWorkerCodec } = await import(new URL('../../../packages/protobuf/dist/worker-codec.js', import.meta.url).href);
  codec = await createWorkerCodec({ schema: SCHEMA, service: SERVICE, handler: HANDLER });
}

/** Requests as the protobuf client encodes them: every method, ordinary and edge arguments. */
export function seeds() {
  const calls = [
    ['GetPrice', { sku: 'kb-001' }],
    ['GetPrice', { sku: 'zz-999' }],
    ['QuoteBasket', { lines: [{ sku: 'kb-001', quantity: 12 }, { sku: 'ms-002', quantity: 1 }], signingRounds: 3 }],
    ['QuoteBasket', { lines: [], signingRounds: 1 }],
    ['Echo', { data: Buffer.from('hello') }],
    ['Echo', { data: Buffer.alloc(0) }],
    ['Sleep', { ms: 1 }],
  ];
  return calls.map(([method, request], i) => {
    const type = service.methods[method].resolvedRequestType;
    return pb.encodeRequestEnvelope({ id: 40 + i, method, deadlineMs: 0, payload: type.encode(type.fromObject(request)).finish() });
  });
}

/** protobufjs's reader over a plain Uint8Array: it checks every length against what is left. */
function decodesStrictly(type, payload) {
  try {
    type.decode(new Uint8Array(payload));
    return true;
  } catch {
    return false;
  }
}

export async function check(body) {
  const result = await handleChecked(codec, body);
  assert(result.reply !== null, 'no reply');

  let reply;
  try {
    reply = pb.decodeResponseEnvelope(Buffer.from(result.reply));
  } catch (error) {
    throw new Error(`reply is not a Response envelope: ${error?.message ?? error}\nreply: ${Buffer.from(result.reply).toString('hex')}`);
  }
  assert(result.failed === (reply.status !== STATUS_OK), `failed ${result.failed} with status ${reply.status}`);
  let request;
  try {
    request = pb.readRequestEnvelope(body);
  } catch {
    assert(reply.id === 0 && reply.status === INVALID_ARGUMENT, `unreadable request answered with id ${reply.id}, status ${reply.status}`);
    return;
  }
  assert(reply.id === request.id, `reply id ${reply.id}, request id ${request.id}`);
  const method = Object.hasOwn(service.methods, request.method) ? service.methods[request.method] : undefined;
  if (!method) return;
  if (reply.status === STATUS_OK) {
    assert(decodesStrictly(method.resolvedResponseType, reply.payload), `an OK reply whose ${method.responseType} does not decode`);
  }
  const payload = body.subarray(request.payloadStart, request.payloadEnd);
  if (!decodesStrictly(method.resolvedRequestType, payload)) {
    assert(
      reply.status === INVALID_ARGUMENT && reply.message.startsWith('cannot decode'),
      `a ${method.requestType} that does not decode answered with status ${reply.status} '${reply.message}'\npayload: ${payload.toString('hex')}`,
    );
  }
}
