import { describe, expect, it } from 'vitest';
import thrift from 'thrift';
import { DeadlineExceededError, KmuxError, OverloadedError, WorkerDiedError, type ErrorKind } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { CATALOG_SERVICE, FIXTURE_HANDLER, PROTOCOLS, decodeApplicationException, decodeReply } from './helpers.js';

const { TApplicationExceptionType: T, MessageType } = thrift.Thrift;

const cases: Array<[KmuxError, number, RegExp]> = [
  [new OverloadedError('connection', 1024), T.INTERNAL_ERROR, /overloaded.*1024/],
  [new KmuxError('shutting_down', 'server is closing'), T.INTERNAL_ERROR, /shutting down: server is closing/],
  [new DeadlineExceededError('lookup', 250), T.INTERNAL_ERROR, /^deadline exceeded: lookup exceeded its 250 ms deadline$/],
  [new WorkerDiedError(1, 'out of memory'), T.INTERNAL_ERROR, /worker 1 died.*out of memory/],
  [new KmuxError('unknown_method', 'no method frobnicate'), T.UNKNOWN_METHOD, /no method frobnicate/],
  [new KmuxError('bad_request' satisfies ErrorKind, 'truncated arguments'), T.PROTOCOL_ERROR, /bad request: truncated arguments/],
  [new KmuxError('handler', 'boom'), T.INTERNAL_ERROR, /^boom$/],
];

describe('thriftCodec errorReply', () => {
  for (const protocol of PROTOCOLS) {
    it(`${protocol}: the thrift library reads a TApplicationException with the request's name, seqid and a mapped type`, () => {
      const codec = thriftCodec({ service: CATALOG_SERVICE, handler: FIXTURE_HANDLER, protocol });
      for (const [error, type, message] of cases) {
        const seqid = 2 ** 31 - 5; // large, but positive: thrift JS reads compact seqids as unsigned
        const reply = codec.errorReply({ id: seqid, method: 'lookúp', oneway: false }, error);
        const decoded = decodeApplicationException(protocol, reply);
        expect(decoded).toMatchObject({ name: 'lookúp', type: MessageType.EXCEPTION, seqid });
        expect(decoded.exception.type).toBe(type);
        expect(decoded.exception.message).toMatch(message);
        expect(codec.peek(reply)).toEqual({ id: seqid, method: 'lookúp', oneway: false }); // also our own reader
      }
    });

    it(`${protocol}: a generated client rejects the call with that TApplicationException`, () => {
      const codec = thriftCodec({ service: CATALOG_SERVICE, handler: FIXTURE_HANDLER, protocol });
      const reply = codec.errorReply({ id: 3, method: 'lookup', oneway: false }, new DeadlineExceededError('lookup', 10));
      const { error } = decodeReply(protocol, 'lookup', reply);
      expect(error).toBeInstanceOf(thrift.Thrift.TApplicationException);
      expect(error).toMatchObject({ type: T.INTERNAL_ERROR, message: expect.stringMatching(/^deadline exceeded/) });
    });
  }

  it('names its worker module and passes plain options', () => {
    const codec = thriftCodec({ service: CATALOG_SERVICE, handler: FIXTURE_HANDLER, protocol: 'compact' });
    expect(codec.name).toBe('thrift-compact');
    expect(codec.worker.module).toMatch(/^file:.*worker-codec\.js$/);
    expect(structuredClone(codec.worker.options)).toEqual({ protocol: 'compact', services: { '': { service: CATALOG_SERVICE, handler: FIXTURE_HANDLER } } });
    expect(() => thriftCodec({ service: 'gen-nodejs/Catalog.js', handler: FIXTURE_HANDLER })).toThrow(/absolute/);
  });
});
