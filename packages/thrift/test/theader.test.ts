// THeader frames as Python's THeaderTransport writes them (bytes captured from
// python3-thrift 0.17), read by kmux, and what it refuses.
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '@kmux/core';
import { encodeTHeader, readTHeader } from '../src/theader.js';

/** python3-thrift: echo(b"hi") with header x-request-id: py-7, binary (frame body, no length). */
const PYTHON_FRAME = Buffer.from(
  '0fff0000000000000006000001010c782d726571756573742d69640470792d37000080010001000000046563686f000000000b000100000002686900',
  'hex',
);

describe('THeader', () => {
  it('reads flags, seqid, protocol, headers and where the message starts', () => {
    const frame = readTHeader(PYTHON_FRAME, 'binary');
    expect(frame).toEqual({ flags: 0, seqid: 0, protocolId: 0, headers: { 'x-request-id': 'py-7' }, messageStart: 34 });
    expect(PYTHON_FRAME.readUInt32BE(frame.messageStart)).toBe(0x80010001);
  });

  it('writes a reply the reader reads back, padded to whole words', () => {
    const message = Buffer.from('80010002000000046563686f00000007', 'hex');
    const reply = encodeTHeader({ flags: 1, seqid: 42, protocolId: 2 }, message);
    expect(readTHeader(reply, 'compact')).toMatchObject({ flags: 1, seqid: 42, protocolId: 2, headers: {} });
    expect(reply.subarray(readTHeader(reply, 'compact').messageStart)).toEqual(message);
  });

  it('refuses transforms, another protocol and a header past the frame', () => {
    const transformed = Buffer.from(PYTHON_FRAME);
    transformed[11] = 1; // one transform (zlib)
    expect(() => readTHeader(transformed, 'binary')).toThrow(/transforms .* not supported/);
    expect(() => readTHeader(PYTHON_FRAME, 'compact')).toThrow(/protocol id 0, but this server speaks compact/);
    expect(() => readTHeader(PYTHON_FRAME.subarray(0, 20), 'binary')).toThrow(ProtocolError);
  });
});
