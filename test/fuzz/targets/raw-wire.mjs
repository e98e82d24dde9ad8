/**
 * Fuzz target: the raw codec's wire (packages/core/src/codec/raw-wire.ts, raw.ts,
 * raw-worker.ts): the main thread's peek, the worker half with a handler module, and the
 * reply and error encodings.
 *
 * Properties, for any request frame body:
 * - peek returns { id, method, oneway: false } or throws a KmuxError of kind protocol;
 * - the worker half never throws; its reply decodes (decodeRawReply) to the request's id,
 *   with a known status: OK with the handler's exact output, or a typed error
 *   (unknown_method, handler; bad_request for a body peek refuses);
 * - errorReply(head, error) decodes back to the same id and error kind, for every kind;
 * - a request re-encoded from what peek read is byte-identical when its method name
 *   round-trips through UTF-8.
 */
import { fileURLToPath } from 'node:url';

const HANDLER = fileURLToPath(new URL('../fixtures/raw-handler.mjs', import.meta.url));
export const coverage = ['packages/core/dist/codec/raw', 'fuzz/fixtures/raw-handler.mjs'];
export const maxLen = 4096;
export const ints = [255, 256];
export const dictionary = ['echo', 'asyncEcho', 'upper', 'fail', 'notBytes', 'constructor', '__proto__', 'toString'].map((s) =>
  Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]),
);

let core;
let codec;
let worker;
const KINDS = [
  'frame_too_large', 'protocol', 'bad_request', 'unknown_method', 'overloaded', 'deadline_exceeded',
  'worker_died', 'handler', 'shutting_down', 'connection_closed', 'transport_unavailable',
];

export async function setup() {
  core = await import('@kmux/core');
  codec = core.rawCodec({ handler: HANDLER });
  const { createWorkerCodec } = await import(new URL('../../../packages/core/dist/codec/raw-worker.js', import.meta.url).href);
  worker = await createWorkerCodec(codec.worker.options);
}

export function seeds() {
  return [
    core.encodeRawRequest(1, 'echo', Buffer.from('hello')),
    core.encodeRawRequest(0xffffffff, 'asyncEcho', Buffer.alloc(0)),
    core.encodeRawRequest(7, 'upper', Buffer.from('abc')),
    core.encodeRawRequest(8, 'fail', Buffer.from('x')),
    core.encodeRawRequest(9, 'notBytes', Buffer.alloc(3)),
    core.encodeRawRequest(10, 'nope', Buffer.from('?')),
    core.encodeRawRequest(11, '', Buffer.alloc(0)),
  ];
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function decode(reply) {
  try {
    return { payload: core.decodeRawReply(reply) };
  } catch (error) {
    assert(error instanceof core.KmuxError, `decodeRawReply threw ${error}`);
    return { error };
  }
}

export async function check(body) {
  let head = null;
  try {
    head = codec.peek(body);
  } catch (error) {
    assert(error instanceof core.KmuxError && error.kind === 'protocol', `peek threw ${error?.stack ?? error}`);
  }
  let result;
  try {
    result = await worker.handle(body, { deadline: Date.now() + 60_000 });
  } catch (error) {
    throw new Error(`worker handle() threw ${error?.stack ?? error}`);
  }
  assert(result && typeof result.failed === 'boolean' && result.reply instanceof Uint8Array, `worker result ${JSON.stringify(result)}`);
  const reply = Buffer.from(result.reply);
  assert(reply.length >= 5, `reply of ${reply.length} bytes`);
  const id = reply.readUInt32BE(0);
  const decoded = decode(reply);

  if (!head) {
    assert(decoded.error?.kind === 'bad_request' && result.failed, `a body peek refuses got ${decoded.error?.kind ?? 'OK'}`);
    assert(id === (body.length >= 4 ? body.readUInt32BE(0) : 0), `bad request answered with id ${id}`);
    return;
  }
  assert(head.oneway === false && Number.isInteger(head.id) && head.id >= 0 && head.id <= 0xffffffff, `head ${JSON.stringify(head)}`);
  assert(id === head.id, `reply id ${id}, request id ${head.id}`);
  const payload = body.subarray(5 + body[4]);
  switch (head.method) {
    case 'echo':
    case 'asyncEcho':
      assert(decoded.payload?.equals(payload), `${head.method} did not echo`);
      break;
    case 'upper':
      assert(decoded.payload?.equals(Buffer.from(payload.toString('latin1').toUpperCase())), 'upper mismatch');
      break;
    case 'fail':
    case 'notBytes':
      assert(decoded.error?.kind === 'handler' && result.failed, `${head.method} gave ${decoded.error?.kind ?? 'OK'}`);
      break;
    default:
      assert(decoded.error?.kind === 'unknown_method' && result.failed, `method '${head.method}' gave ${decoded.error?.kind ?? 'OK'}`);
  }
  for (const kind of KINDS) {
    const back = decode(codec.errorReply(head, new core.KmuxError(kind, `fuzzed ${kind}`)));
    assert(back.error?.kind === kind && back.error.message === `fuzzed ${kind}`, `errorReply(${kind}) decodes as ${back.error?.kind}`);
  }
  if (Buffer.from(head.method, 'utf8').equals(body.subarray(5, 5 + body[4]))) {
    assert(core.encodeRawRequest(head.id, head.method, payload).equals(body), 're-encoded request differs');
  }
}
