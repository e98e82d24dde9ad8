/**
 * Fuzz target: readMessageHead (packages/thrift/src/message-head.ts), the main thread's
 * peek at every Thrift request, in both protocols on every input.
 *
 * Properties:
 * - it returns a head or throws ProtocolError (kind protocol); nothing else;
 * - a head is sane: type CALL..ONEWAY, seqid an i32, name at most 4096 bytes, and its
 *   length within the frame;
 * - differential, against the stock thrift library's readMessageBegin over the same bytes:
 *   when kmux accepts, the library reads the same name, type and seqid and stops at the
 *   same offset; when the library reads a head kmux could accept (valid type, name up to
 *   4096 bytes, varints of at most 5 bytes), kmux accepts it too.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const EXAMPLE_DIR = fileURLToPath(new URL('../../../examples/thrift/', import.meta.url));
export const coverage = ['packages/thrift/dist/message-head.js'];
export const maxLen = 8192;
export const ints = [4096, 4097, 0x80010001, 0x80010004, 0x80010005];
export const dictionary = [
  Buffer.from([0x80, 0x01, 0x00, 0x01]),
  Buffer.from([0x80, 0x01, 0x00, 0x04]),
  Buffer.from([0x80, 0x01, 0x00, 0x02]),
  Buffer.from([0x82, 0x21]),
  Buffer.from([0x82, 0x81]),
  Buffer.from([0x82, 0x41]),
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
  Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
  Buffer.from('echo'),
  Buffer.from('hashRounds'),
];

let readMessageHead;
let thrift;

export async function setup() {
  ({ readMessageHead } = await import('@kmux/thrift'));
  thrift = createRequire(EXAMPLE_DIR)('thrift');
}

export function seeds() {
  const out = [];
  for (const Protocol of [thrift.TBinaryProtocol, thrift.TCompactProtocol]) {
    for (const [name, type, seqid] of [['echo', 1, 7], ['recordView', 4, 0], ['lookup', 1, -1], ['', 1, 2147483647], ['hashRounds', 2, 300]]) {
      const chunks = [];
      const transport = new thrift.TBufferedTransport(undefined, (message) => chunks.push(message));
      const protocol = new Protocol(transport);
      protocol.writeMessageBegin(name, type, seqid);
      protocol.writeMessageEnd();
      protocol.flush();
      out.push(Buffer.concat([...chunks, Buffer.from([0x0c, 0x00, 0x01, 0x00])]));
    }
  }
  // The old non-strict binary form: name length, name, type byte, seqid.
  out.push(Buffer.from([0, 0, 0, 4, ...Buffer.from('echo'), 1, 0, 0, 0, 9, 0]));
  return out;
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function library(protocol, body) {
  const transport = new thrift.TFramedTransport(body);
  const reader = new (protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol)(transport);
  try {
    const head = reader.readMessageBegin();
    const name = typeof head.fname === 'string' ? head.fname : Buffer.from(head.fname).toString('utf8');
    return { name, nameBytes: Buffer.byteLength(typeof head.fname === 'string' ? head.fname : head.fname), type: head.mtype, seqid: Number(head.rseqid) | 0, end: transport.readPos };
  } catch {
    return null;
  }
}

export function check(body) {
  for (const protocol of ['binary', 'compact']) {
    let head = null;
    let failure = null;
    try {
      head = readMessageHead(body, protocol);
    } catch (error) {
      failure = error;
      assert(error?.name === 'ProtocolError' && error.kind === 'protocol', `${protocol}: threw ${error?.stack ?? error}, not a ProtocolError`);
    }
    const stock = library(protocol, body);
    if (head) {
      assert(head.type >= 1 && head.type <= 4, `${protocol}: type ${head.type}`);
      assert(Number.isInteger(head.seqid) && head.seqid === (head.seqid | 0), `${protocol}: seqid ${head.seqid} is not an i32`);
      assert(typeof head.name === 'string' && Buffer.byteLength(head.name) <= 4096 * 3, `${protocol}: name of ${head.name.length} chars`);
      assert(head.length > 0 && head.length <= body.length, `${protocol}: head length ${head.length} in a ${body.length}-byte frame`);
      assert(stock !== null, `${protocol}: kmux read a head the thrift library refuses: ${JSON.stringify(head)}`);
      assert(stock.name === head.name && stock.type === head.type && stock.seqid === head.seqid,
        `${protocol}: kmux read ${JSON.stringify(head)}, the library ${JSON.stringify(stock)}`);
      assert(stock.end === head.length, `${protocol}: kmux says the head ends at ${head.length}, the library at ${stock.end}`);
    } else if (stock && stock.type >= 1 && stock.type <= 4 && stock.nameBytes <= 4096) {
      const overlong = /varint longer than 5 bytes/.test(failure.message);
      assert(overlong, `${protocol}: the library reads ${JSON.stringify(stock)} but kmux refuses: ${failure.message}`);
    }
  }
}
