import { describe, expect, it } from 'vitest';
import thrift from 'thrift';
import { ProtocolError } from '@kmux/core';
import { thriftCodec, type ThriftProtocolName } from '@kmux/thrift';
import { CATALOG_SERVICE, FIXTURE_HANDLER, PROTOCOLS, capturingTransport, encodeCall } from './helpers.js';

const codec = (protocol: ThriftProtocolName) => thriftCodec({ service: CATALOG_SERVICE, handler: FIXTURE_HANDLER, protocol });

/** A message header written by the thrift library itself. */
function libraryHeader(protocol: ThriftProtocolName | 'binary-nonstrict', name: string, type: number, seqid: number): Buffer {
  let out = Buffer.alloc(0);
  const transport = capturingTransport((message) => (out = message));
  const writer =
    protocol === 'compact'
      ? new thrift.TCompactProtocol(transport)
      : new thrift.TBinaryProtocol(transport, false, protocol === 'binary');
  writer.writeMessageBegin(name, type, seqid);
  writer.writeStructBegin('args');
  writer.writeFieldStop();
  writer.writeStructEnd();
  writer.writeMessageEnd();
  writer.flush();
  return out;
}

describe('thriftCodec peek', () => {
  for (const protocol of PROTOCOLS) {
    describe(protocol, () => {
      it('reads method, seqid and the oneway flag from real calls', () => {
        expect(codec(protocol).peek(encodeCall(protocol, 'lookup', [{ sku: 'a' }], 42))).toEqual({
          id: 42,
          method: 'lookup',
          oneway: false,
        });
        expect(codec(protocol).peek(encodeCall(protocol, 'recordView', ['a'], 9))).toEqual({
          id: 9,
          method: 'recordView',
          oneway: true,
        });
      });

      it('keeps negative, large and multi-byte values intact', () => {
        for (const seqid of [0, 1, 127, 128, 300_000, 2 ** 31 - 1, -1, -(2 ** 31)]) {
          const head = codec(protocol).peek(libraryHeader(protocol, 'méthode', thrift.Thrift.MessageType.CALL, seqid));
          expect(head).toEqual({ id: seqid, method: 'méthode', oneway: false });
        }
      });

      it('throws ProtocolError on garbage, truncation and the other protocol', () => {
        const call = encodeCall(protocol, 'echo', [Buffer.from('hi')]);
        const other = encodeCall(protocol === 'binary' ? 'compact' : 'binary', 'echo', [Buffer.from('hi')]);
        const nameLength = call.indexOf('echo') - 1;
        const garbage = [
          Buffer.alloc(0),
          Buffer.from([0x80]),
          Buffer.from('GET / HTTP/1.1\r\n\r\n'),
          other,
          call.subarray(0, nameLength + 3), // cut inside the name
          Buffer.from([...call.subarray(0, 1), 0xff, ...call.subarray(2)]), // bad version byte
        ];
        for (const body of garbage) expect(() => codec(protocol).peek(body), body.toString('hex')).toThrow(ProtocolError);
      });
    });
  }

  it('accepts the old non-strict binary header', () => {
    const body = libraryHeader('binary-nonstrict', 'echo', thrift.Thrift.MessageType.ONEWAY, 5);
    expect(body.readInt32BE(0)).toBe(4); // starts with the name length, no version word
    expect(codec('binary').peek(body)).toEqual({ id: 5, method: 'echo', oneway: true });
  });

  it('rejects message types outside CALL..ONEWAY and absurd name lengths', () => {
    expect(() => codec('binary').peek(libraryHeader('binary', 'echo', 9, 1))).toThrow(ProtocolError);
    expect(() => codec('compact').peek(libraryHeader('compact', 'echo', 0, 1))).toThrow(ProtocolError);
    const hugeName = Buffer.from([0x80, 0x01, 0x00, 0x01, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    expect(() => codec('binary').peek(hugeName)).toThrow(/name length/);
    // Found by the soak's fuzzer: a compact name length of 2^34 in a 5-byte varint was cut to
    // 32 bits (0), and the head read as the empty name, where the thrift library refuses it.
    const wrappedName = Buffer.from([0x82, 0x21, 0x07, 0x80, 0x80, 0x80, 0x80, 0x40, 0x0c, 0x00]);
    expect(() => codec('compact').peek(wrappedName)).toThrow(/name length 17179869184/);
  });
});
