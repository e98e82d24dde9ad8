import { describe, expect, it } from 'vitest';
import { ProtocolError } from '@kmux/core';
import {
  Status,
  decodeResponseEnvelope,
  encodeRequestEnvelope,
  encodeResponseEnvelope,
  readRequestEnvelope,
  type RequestEnvelope,
} from '@kmux/protobuf';
import { RequestType, ResponseType, readResponse, requestFrame } from './helpers.js';

const payload = Buffer.from([0x0a, 0x06, 0x6b, 0x62, 0x2d, 0x30, 0x30, 0x31]);

describe('request envelope', () => {
  it('writes what protobufjs reads', () => {
    const requests: RequestEnvelope[] = [
      { id: 7, method: 'GetPrice', deadlineMs: 250, payload, metadata: {} },
      { id: 0xffffffff, method: 'Ünïcode/Méthod', deadlineMs: 2 ** 32 - 1, payload: Buffer.alloc(300, 1), metadata: { traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`, 'x-é': '', '': 'empty key' } },
    ];
    for (const request of requests) {
      const decoded = RequestType.toObject(RequestType.decode(encodeRequestEnvelope(request)), { defaults: true });
      expect(decoded).toEqual({ ...request, payload: Buffer.from(request.payload) });
    }
  });

  it('reads the metadata map protobufjs writes: every pair, the last value of a repeated key, entry fields in any order', () => {
    const writer = RequestType.encode({ method: 'GetPrice', metadata: { traceparent: 'tp', tracestate: 'a=1', ['__proto__']: 'not a prototype' } });
    writer.uint32((5 << 3) | 2).fork().uint32((2 << 3) | 2).string('b=2').uint32((1 << 3) | 2).string('tracestate').ldelim(); // value before key
    writer.uint32((5 << 3) | 2).fork().uint32((1 << 3) | 2).string('only-key').ldelim();
    const { metadata } = readRequestEnvelope(Buffer.from(writer.finish()));
    expect({ ...metadata }).toEqual({ traceparent: 'tp', tracestate: 'b=2', ['__proto__']: 'not a prototype', 'only-key': '' });
    expect(Object.getPrototypeOf(metadata)).toBeNull();
    expect(readRequestEnvelope(requestFrame({ method: 'GetPrice' })).metadata).toEqual({});
  });

  it('refuses a metadata entry whose key is not a string', () => {
    const writer = RequestType.encode({ method: 'GetPrice' });
    writer.uint32((5 << 3) | 2).fork().uint32((1 << 3) | 0).uint32(7).ldelim();
    expect(() => readRequestEnvelope(Buffer.from(writer.finish()))).toThrow(ProtocolError);
  });

  it('leaves zero values out, as proto3 does: the same bytes as protobufjs writing only the method', () => {
    const body = encodeRequestEnvelope({ id: 0, method: 'Echo', deadlineMs: 0, payload: new Uint8Array(0) });
    expect(body).toEqual(Buffer.from(RequestType.encode({ method: 'Echo' }).finish()));
  });

  it('reads what protobufjs writes, leaving the payload in place', () => {
    const body = requestFrame({ id: 123_456_789, method: 'QuoteBasket', deadlineMs: 1500, payload });
    const head = readRequestEnvelope(body);
    expect(head).toMatchObject({ id: 123_456_789, method: 'QuoteBasket', deadlineMs: 1500 });
    expect(body.subarray(head.payloadStart, head.payloadEnd)).toEqual(payload);
  });

  it('reads fields in any order, takes the last of a repeated field, skips unknown fields of every wire type', () => {
    const writer = RequestType.encode({ payload, method: 'Old' }); // fields 4, 2
    writer.uint32((9 << 3) | 0).uint64(2 ** 40); // unknown varint
    writer.uint32((10 << 3) | 1).fixed64(1); // unknown I64
    writer.uint32((11 << 3) | 2).bytes(Buffer.from('ignored')); // unknown LEN
    writer.uint32((12 << 3) | 5).fixed32(1); // unknown I32
    writer.uint32((2 << 3) | 2).string('Echo'); // method again: this one wins
    writer.uint32((1 << 3) | 0).int64(-2); // a 10-byte varint: its low 32 bits count
    const body = Buffer.from(writer.finish());
    const head = readRequestEnvelope(body);
    expect(head).toMatchObject({ id: 0xfffffffe, method: 'Echo', deadlineMs: 0 });
    expect(body.subarray(head.payloadStart, head.payloadEnd)).toEqual(payload);
  });

  const notEnvelopes: Array<[string, Buffer]> = [
    ['an empty frame', Buffer.alloc(0)],
    ['a Thrift binary call', Buffer.from('8001000100000004', 'hex')],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a truncated varint', Buffer.from([0x08, 0xff, 0xff])],
    ['a varint longer than 10 bytes', Buffer.from([0x08, ...Array(10).fill(0xff), 0x01])],
    ['a method longer than the frame', Buffer.from([0x12, 0x10, 0x45])],
    ['field number 0', Buffer.from([0x02, 0x00])],
    ['a proto2 group', Buffer.from([0x12, 0x01, 0x45, 0x2b])],
    ['a truncated fixed64', Buffer.from([0x12, 0x01, 0x45, 0x49, 0, 0])],
    ['an id sent as a string', requestFrame({ method: 'Echo' }).fill(0x0a, 0, 1)],
    ['no method', requestFrame({ id: 3, payload })],
  ];
  for (const [what, body] of notEnvelopes) {
    it(`throws a ProtocolError for ${what}`, () => {
      expect(() => readRequestEnvelope(body)).toThrow(ProtocolError);
    });
  }

  it('refuses to write a request without a method', () => {
    expect(() => encodeRequestEnvelope({ id: 1, method: '', deadlineMs: 0, payload })).toThrow(RangeError);
  });
});

describe('response envelope', () => {
  it('writes what protobufjs reads, and exactly its bytes', () => {
    const ok = encodeResponseEnvelope({ id: 9, status: Status.OK, message: '', payload });
    expect(readResponse(ok)).toEqual({ id: 9, status: 'OK', message: '', payload });
    expect(ok).toEqual(Buffer.from(ResponseType.encode({ id: 9, payload }).finish())); // OK and no message: left out

    const failed = encodeResponseEnvelope({ id: 2 ** 32 - 1, status: Status.UNIMPLEMENTED, message: 'nö', payload: new Uint8Array(0) });
    expect(readResponse(failed)).toEqual({ id: 2 ** 32 - 1, status: 'UNIMPLEMENTED', message: 'nö', payload: Buffer.alloc(0) });
  });

  it('reads what protobufjs writes, unknown fields skipped', () => {
    const writer = ResponseType.encode({ id: 44, status: Status.NOT_FOUND, message: 'no such sku', payload });
    writer.uint32((15 << 3) | 2).string('from a newer server');
    const response = decodeResponseEnvelope(Buffer.from(writer.finish()));
    expect(response).toEqual({ id: 44, status: Status.NOT_FOUND, message: 'no such sku', payload });
  });

  it('throws a ProtocolError for a frame that is not a response', () => {
    expect(() => decodeResponseEnvelope(Buffer.from([0x0a, 0x05]))).toThrow(ProtocolError);
  });
});
