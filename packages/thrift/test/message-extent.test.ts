// Unframed Thrift: messages written by the thrift library itself, of every wire type and
// nesting, measured by kmux's walk and split out of a stream cut at random points.
import thrift from 'thrift';
import { describe, expect, it } from 'vitest';
import { FrameTooLargeError, ProtocolError, UnframedSplitter } from '@kmux/core';
import { unframedMessages } from '../src/message-extent.js';
import { PROTOCOLS, capturingTransport, encodeCall, protocolClass } from './helpers.js';

const T = thrift.Thrift.Type;

/** A CALL whose argument struct holds every type, containers of containers and bools in lists. */
function everyTypeMessage(protocol: (typeof PROTOCOLS)[number], seqid: number, size: number): Buffer {
  let message: Buffer | undefined;
  const out = new (protocolClass(protocol))(capturingTransport((bytes) => (message = bytes)));
  out.writeMessageBegin(`method${seqid}`, thrift.Thrift.MessageType.CALL, seqid);
  out.writeStructBegin('args');
  out.writeFieldBegin('flag', T.BOOL, 1);
  out.writeBool(seqid % 2 === 0);
  out.writeFieldEnd();
  out.writeFieldBegin('b', T.BYTE, 2);
  out.writeByte(-3);
  out.writeFieldEnd();
  out.writeFieldBegin('i16', T.I16, 3);
  out.writeI16(-300);
  out.writeFieldEnd();
  out.writeFieldBegin('i32', T.I32, 40); // a field id delta above 15: compact's long form
  out.writeI32(-70000 * seqid);
  out.writeFieldEnd();
  out.writeFieldBegin('i64', T.I64, 41);
  out.writeI64(2 ** 50 + seqid);
  out.writeFieldEnd();
  out.writeFieldBegin('d', T.DOUBLE, 42);
  out.writeDouble(Math.PI);
  out.writeFieldEnd();
  out.writeFieldBegin('s', T.STRING, 43);
  out.writeBinary(Buffer.alloc(size, seqid & 0xff));
  out.writeFieldEnd();
  out.writeFieldBegin('bools', T.LIST, 44);
  out.writeListBegin(T.BOOL, 20);
  for (let i = 0; i < 20; i++) out.writeBool(i % 3 === 0);
  out.writeListEnd();
  out.writeFieldEnd();
  out.writeFieldBegin('nested', T.MAP, 45);
  out.writeMapBegin(T.STRING, T.LIST, 3);
  for (let k = 0; k < 3; k++) {
    out.writeString(`key${k}`);
    out.writeListBegin(T.STRUCT, 2);
    for (let j = 0; j < 2; j++) {
      out.writeStructBegin('inner');
      out.writeFieldBegin('set', T.SET, 1);
      out.writeSetBegin(T.I32, 17); // compact: a size above 14 takes the long form
      for (let v = 0; v < 17; v++) out.writeI32(v * k);
      out.writeSetEnd();
      out.writeFieldEnd();
      out.writeFieldBegin('empty', T.MAP, 2);
      out.writeMapBegin(T.I32, T.I32, 0);
      out.writeMapEnd();
      out.writeFieldEnd();
      out.writeFieldStop();
      out.writeStructEnd();
    }
    out.writeListEnd();
  }
  out.writeMapEnd();
  out.writeFieldEnd();
  out.writeFieldStop();
  out.writeStructEnd();
  out.writeMessageEnd();
  out.flush();
  return message!;
}

function splitAll(protocol: (typeof PROTOCOLS)[number], stream: Buffer, chunk: () => number, limit = 1 << 20): Buffer[] {
  const splitter = new UnframedSplitter(unframedMessages(protocol), limit);
  const out: Buffer[] = [];
  for (let at = 0; at < stream.length; ) {
    const end = Math.min(stream.length, at + Math.max(1, chunk()));
    splitter.push(stream.subarray(at, end), (body) => out.push(Buffer.from(body)));
    at = end;
  }
  expect(splitter.bufferedBytes).toBe(0);
  return out;
}

for (const protocol of PROTOCOLS) {
  describe(`unframed ${protocol} messages`, () => {
    const messages = Array.from({ length: 40 }, (_, i) => everyTypeMessage(protocol, i + 1, [0, 5, 300, 70_000][i % 4]!));
    messages.push(encodeCall(protocol, 'echo', [Buffer.from('generated')]), encodeCall(protocol, 'recordView', ['kb-001']));
    const stream = Buffer.concat(messages);

    it('measures each message exactly, and asks for more at every shorter prefix', () => {
      const measure = unframedMessages(protocol).measure;
      for (const message of messages.slice(0, 6)) {
        expect(measure(Buffer.concat([message, Buffer.from([1, 2, 3])]))).toEqual({ complete: true, length: message.length });
        for (let cut = 0; cut < message.length; cut += Math.max(1, Math.floor(message.length / 97))) {
          const extent = measure(message.subarray(0, cut));
          expect(extent.complete, `cut at ${cut} of ${message.length}`).toBe(false);
          if (!extent.complete) expect(extent.atLeast).toBeGreaterThan(cut);
        }
      }
    });

    it('splits a stream cut into chunks of any size, whole chunks and single bytes alike', () => {
      let seed = 7;
      const random = (max: number) => () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % max;
      for (const chunk of [random(3), random(700), random(90_000), () => stream.length]) {
        const out = splitAll(protocol, stream, chunk);
        expect(out.length).toBe(messages.length);
        out.forEach((body, i) => expect(body.equals(messages[i]!), `message ${i}`).toBe(true));
      }
    });

    it('refuses a message that declares more than maxFrameBytes before buffering it', () => {
      const big = everyTypeMessage(protocol, 1, 5000);
      const splitter = new UnframedSplitter(unframedMessages(protocol), 4096);
      // Only the header and the string's length have arrived.
      expect(() => splitter.push(big.subarray(0, 80), () => {})).toThrow(FrameTooLargeError);
      expect(() => splitAll(protocol, big, () => 10, 4096)).toThrow(FrameTooLargeError);
    });

    it('refuses a bad field type and nesting deeper than 64 as protocol errors', () => {
      const measure = unframedMessages(protocol).measure;
      const head = everyTypeMessage(protocol, 1, 0).subarray(0, protocol === 'binary' ? 4 + 4 + 7 + 4 : 2 + 1 + 1 + 7);
      const badType = Buffer.concat([head, Buffer.from(protocol === 'binary' ? [0x7f, 0, 1] : [0x1e])]);
      expect(() => measure(badType)).toThrow(ProtocolError);
      const deep =
        protocol === 'binary'
          ? Buffer.concat([head, ...Array.from({ length: 70 }, () => Buffer.from([T.STRUCT, 0, 1]))])
          : Buffer.concat([head, Buffer.alloc(70, 0x1c)]); // field delta 1, type struct
      expect(() => measure(deep)).toThrow(/nested deeper than 64/);
    });
  });
}
