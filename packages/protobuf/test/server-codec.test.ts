import { describe, expect, it } from 'vitest';
import {
  DeadlineExceededError,
  KmuxError,
  OverloadedError,
  ProtocolError,
  WorkerDiedError,
  type ErrorKind,
  type RequestHead,
} from '@kmux/core';
import { protobufCodec } from '@kmux/protobuf';
import { FIXTURE_HANDLER, PRICING_PROTO, PRICING_SERVICE, readResponse, requestFrame } from './helpers.js';

const codec = protobufCodec({ schema: PRICING_PROTO, service: PRICING_SERVICE, handler: FIXTURE_HANDLER });

describe('protobufCodec peek', () => {
  it("reads id, method and deadline, and never the payload's contents", () => {
    const notAMessage = Buffer.from([0xff, 0xff, 0xff]); // peek must not care
    expect(codec.peek(requestFrame({ id: 42, method: 'GetPrice', deadlineMs: 250, payload: notAMessage }))).toEqual({
      id: 42,
      method: 'GetPrice',
      oneway: false,
      timeoutMs: 250,
    });
  });

  it('reports no deadline when the client sent none, so the server applies its own', () => {
    expect(codec.peek(requestFrame({ id: 1, method: 'Echo' })).timeoutMs).toBeUndefined();
  });

  it('throws a ProtocolError for a frame that is not an envelope, so the core closes the connection', () => {
    for (const garbage of [Buffer.from('8001000100000004', 'hex'), Buffer.from('GET / HTTP/1.1\r\n'), Buffer.alloc(0)]) {
      expect(() => codec.peek(garbage)).toThrow(ProtocolError);
    }
  });
});

describe('protobufCodec errorReply', () => {
  const cases: Array<[KmuxError, string]> = [
    [new OverloadedError('connection', 1024), 'RESOURCE_EXHAUSTED'],
    [new DeadlineExceededError('GetPrice', 250), 'DEADLINE_EXCEEDED'],
    [new KmuxError('unknown_method', 'no method Refund'), 'UNIMPLEMENTED'],
    [new KmuxError('bad_request' satisfies ErrorKind, 'truncated'), 'INVALID_ARGUMENT'],
    [new WorkerDiedError(1, 'out of memory'), 'INTERNAL'],
    [new KmuxError('shutting_down', 'server is shutting down'), 'UNAVAILABLE'],
    [new KmuxError('handler', 'internal error in the codec'), 'INTERNAL'],
  ];
  for (const [error, status] of cases) {
    it(`answers ${error.kind} with ${status}, the request's id and the error's message`, () => {
      const head: RequestHead = { id: 2 ** 32 - 3, method: 'GetPrice', oneway: false };
      expect(readResponse(codec.errorReply(head, error))).toEqual({
        id: 2 ** 32 - 3,
        status,
        message: error.message,
        payload: Buffer.alloc(0),
      });
    });
  }
});

describe('protobufCodec options', () => {
  it('needs absolute paths, since workers resolve them on their own', () => {
    expect(() => protobufCodec({ schema: 'pricing.proto', service: PRICING_SERVICE, handler: FIXTURE_HANDLER })).toThrow(/schema must be an absolute path/);
    expect(() => protobufCodec({ schema: PRICING_PROTO, service: PRICING_SERVICE, handler: './h.mjs' })).toThrow(/handler must be an absolute path/);
    expect(() => protobufCodec({ schema: PRICING_PROTO, service: '', handler: FIXTURE_HANDLER })).toThrow(/service/);
  });

  it('names the worker module and passes the options as plain data', () => {
    expect(codec.name).toBe('protobuf');
    expect(structuredClone(codec.worker.options)).toEqual({ schema: PRICING_PROTO, service: PRICING_SERVICE, handler: FIXTURE_HANDLER });
  });
});
