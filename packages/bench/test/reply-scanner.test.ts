import { describe, expect, it } from 'vitest';
import thrift from 'thrift';
import { ReplyScanner } from '../src/load/reply-scanner.js';
import { encodeCall } from '../src/load/request-template.js';
import { catalogService } from '../src/service/catalog.js';
import { MessageType, WireFormatError } from '../src/load/thrift-wire.js';

/** A framed binary-protocol message with an empty struct, encoded by the thrift library. */
function message(name: string, type: number, seqid: number): Buffer {
  let framed: Buffer | undefined;
  const protocol = new thrift.TBinaryProtocol(
    new thrift.TFramedTransport(undefined, (buf) => {
      framed = buf;
    }),
  );
  protocol.writeMessageBegin(name, type as thrift.Thrift.MessageType, seqid);
  protocol.writeStructBegin('result');
  protocol.writeFieldStop();
  protocol.writeStructEnd();
  protocol.writeMessageEnd();
  protocol.flush();
  return framed!;
}

function scan(chunks: Buffer[]): Array<[number, number]> {
  const seen: Array<[number, number]> = [];
  const scanner = new ReplyScanner((type, seqid) => seen.push([type, seqid]));
  for (const chunk of chunks) scanner.push(chunk);
  expect(scanner.pendingBytes).toBe(0);
  return seen;
}

describe('ReplyScanner', () => {
  const replies = [
    message('echo', MessageType.REPLY, 7),
    message('burnCpu', MessageType.EXCEPTION, 2 ** 30 + 5),
    message('x', MessageType.REPLY, 0),
  ];
  const expected = [
    [MessageType.REPLY, 7],
    [MessageType.EXCEPTION, 2 ** 30 + 5],
    [MessageType.REPLY, 0],
  ];

  it('reads type and seqid of several frames in one chunk', () => {
    expect(scan([Buffer.concat(replies)])).toEqual(expected);
  });

  it('reassembles frames split at every possible byte', () => {
    const stream = Buffer.concat(replies);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(scan([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(expected);
    }
  });

  it('survives one byte at a time', () => {
    const stream = Buffer.concat(replies);
    const bytes = Array.from(stream, (_, i) => stream.subarray(i, i + 1));
    expect(scan(bytes)).toEqual(expected);
  });

  it('rejects a frame that is not strict binary protocol', () => {
    const bogus = Buffer.from([0, 0, 0, 4, 0x17, 0x03, 0x03, 0x00]);
    const scanner = new ReplyScanner(() => undefined);
    expect(() => scanner.push(bogus)).toThrow(WireFormatError);
  });
});

describe('encodeCall', () => {
  it('locates the seqid so that patching it changes only the seqid', () => {
    const template = encodeCall(catalogService.Client, { method: 'echo', args: [Buffer.alloc(64, 0xab)] });
    const frame = Buffer.from(template.frame);
    frame.writeInt32BE(123_456, template.seqidAt);
    const seen: Array<[number, number]> = [];
    new ReplyScanner((type, seqid) => seen.push([type, seqid])).push(frame);
    expect(seen).toEqual([[MessageType.CALL, 123_456]]);
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    expect(frame.subarray(template.seqidAt + 4)).toEqual(template.frame.subarray(template.seqidAt + 4));
  });
});
