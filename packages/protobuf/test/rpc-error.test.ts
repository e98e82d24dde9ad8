import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { ENVELOPE_PROTO, RpcError, Status, statusName, type StatusCode } from '@kmux/protobuf';

describe('RpcError', () => {
  it('carries a status and a message', () => {
    const error = new RpcError(Status.NOT_FOUND, 'no item');
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'RpcError', status: 5, statusName: 'NOT_FOUND', message: 'no item' });
  });

  it('refuses OK and codes that do not exist', () => {
    expect(() => new RpcError(Status.OK, 'fine')).toThrow(RangeError);
    expect(() => new RpcError(17 as StatusCode, 'new')).toThrow(RangeError);
  });

  it('is recognised across copies of the package, and nothing else is', () => {
    // What an RpcError from another copy of @kmux/protobuf looks like: another class, same brand.
    const otherCopy = Object.assign(Object.create({ [Symbol.for('kmux.protobuf.RpcError')]: true }), { status: 5 });
    expect(RpcError.is(otherCopy)).toBe(true);
    expect(RpcError.is(new RpcError(Status.INTERNAL, 'x'))).toBe(true);
    expect(RpcError.is(Object.assign(new Error('http'), { status: 5 }))).toBe(false);
    expect(RpcError.is('NOT_FOUND')).toBe(false);
  });
});

describe('status codes', () => {
  it("use gRPC's numbers and names", () => {
    expect(Status).toMatchObject({ OK: 0, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 });
    expect(statusName(12)).toBe('UNIMPLEMENTED');
    expect(statusName(99)).toBe('STATUS_99');
  });

  it('match envelope.proto exactly', () => {
    const declared = protobuf.loadSync(ENVELOPE_PROTO).lookupEnum('kmux.envelope.v1.Status').values;
    expect(declared).toEqual(Status);
  });
});
