import { describe, expect, it } from 'vitest';
import thrift from 'thrift';
import { loadService, readRequestEnvelope } from '@kmux/protobuf';
import { mixSchedule } from '../src/load/request-mix.js';
import { encodeProtobufCall, encodeThriftCall } from '../src/load/request-template.js';
import { catalogService } from '../src/service/catalog.js';
import { CATALOG_PROTO, CATALOG_PROTO_SERVICE } from '../src/service/catalog-proto.js';

describe('request templates', () => {
  it('locate the Thrift seqid, so that patching it changes only the seqid', () => {
    const template = encodeThriftCall(catalogService.Client, { method: 'echo', args: [Buffer.alloc(64, 0xab)] });
    const frame = Buffer.from(template.frame);
    frame.writeInt32BE(123_456, template.idAt);
    const input = new thrift.TBinaryProtocol(new thrift.TFramedTransport(frame.subarray(4)));
    const head = input.readMessageBegin();
    expect(head).toEqual({ fname: 'echo', mtype: thrift.Thrift.MessageType.CALL, rseqid: 123_456 });
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
  });

  it('put the protobuf id first as a 5-byte varint, the call mirrored from the Thrift IDL', async () => {
    const service = await loadService(CATALOG_PROTO, CATALOG_PROTO_SERVICE);
    const data = Buffer.from('some bytes');
    const template = encodeProtobufCall(service, { method: 'hashRounds', args: [data, 7] });
    const frame = Buffer.from(template.frame);
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    // 0xdeadbeef as the generator writes it: 7 bits at a time, continuation on all but the last.
    frame.set([0xef, 0xfd, 0xb6, 0xf5, 0x0d], template.idAt);
    const head = readRequestEnvelope(frame.subarray(4));
    expect(head.id).toBe(0xdeadbeef);
    expect(head.method).toBe('HashRounds');
    const request = service.methods.HashRounds!.resolvedRequestType!.decode(frame.subarray(4 + head.payloadStart, 4 + head.payloadEnd));
    expect(request.toJSON()).toEqual({ data: data.toString('base64'), rounds: 7 });
  });

  it('interleave a weighted mix', () => {
    const schedule = mixSchedule([
      { label: 'fast', weight: 3 },
      { label: 'slow', weight: 1 },
    ]);
    expect(Array.from(schedule).sort()).toEqual([0, 0, 0, 1]);
    expect(schedule[0]).toBe(0);
  });
});
