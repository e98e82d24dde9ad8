import { describe, expect, it } from 'vitest';
import { KmuxError, RAW_STATUS, decodeRawReply, encodeRawRequest, rawClientCodec, rawCodec } from '@kmux/core';

const codec = rawCodec({ handler: '/unused.mjs' });

describe('raw codec wire format', () => {
  it('encodes a request that the server side peeks', () => {
    const body = encodeRawRequest(0xfffffffe, 'héllo', Buffer.from('payload'));
    expect(body.readUInt32BE(0)).toBe(0xfffffffe);
    expect(body[4]).toBe(Buffer.byteLength('héllo'));
    expect(codec.peek(body)).toEqual({ id: 0xfffffffe, method: 'héllo', oneway: false });
    expect(body.subarray(5 + body[4]!).toString()).toBe('payload');
  });

  it('refuses method names longer than 255 bytes', () => {
    expect(() => encodeRawRequest(1, 'm'.repeat(255), Buffer.alloc(0))).not.toThrow();
    expect(() => encodeRawRequest(1, 'm'.repeat(256), Buffer.alloc(0))).toThrow(RangeError);
  });

  it('peek throws a protocol error for frames too short for their method name', () => {
    for (const body of [Buffer.alloc(0), Buffer.from([0, 0, 0, 1]), Buffer.from([0, 0, 0, 1, 3, 0x61])]) {
      expect(() => codec.peek(body)).toThrow(expect.objectContaining({ kind: 'protocol' }));
    }
    expect(codec.peek(Buffer.from([0, 0, 0, 9, 0]))).toEqual({ id: 9, method: '', oneway: false });
  });

  it('round-trips every error kind through errorReply and decodeRawReply', () => {
    for (const kind of Object.keys(RAW_STATUS).filter((k) => k !== 'ok')) {
      const reply = codec.errorReply({ id: 5, method: 'm', oneway: false }, new KmuxError(kind as never, `msg ${kind}`));
      expect(rawClientCodec.replyId(reply)).toBe(5);
      expect(() => decodeRawReply(reply)).toThrow(expect.objectContaining({ kind, message: `msg ${kind}` }));
    }
  });

  it('decodes OK replies, unknown statuses and short frames', () => {
    expect(decodeRawReply(Buffer.from([0, 0, 0, 1, 0, 0x68, 0x69])).toString()).toBe('hi');
    expect(() => decodeRawReply(Buffer.from([0, 0, 0, 1, 200, 0x78]))).toThrow(expect.objectContaining({ kind: 'handler', message: 'x' }));
    expect(() => decodeRawReply(Buffer.from([0, 0, 0, 1]))).toThrow(expect.objectContaining({ kind: 'protocol' }));
  });

  it('has distinct status codes', () => {
    expect(new Set(Object.values(RAW_STATUS)).size).toBe(Object.keys(RAW_STATUS).length);
  });
});
