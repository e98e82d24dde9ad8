// The reliability suites encode Thrift calls by hand, for speed: here they are checked byte
// for byte against the generated Catalog client, so the suites test what real clients send.
import { describe, expect, it } from 'vitest';
import { Catalog, WIRES, thrift } from './lib/wire.js';

function generated(protocol: 'binary' | 'compact', method: string, args: unknown[], seqid: number): Buffer {
  const sent: Buffer[] = [];
  const transport = new thrift.TBufferedTransport(undefined, (message: Buffer) => sent.push(message));
  const client = new Catalog.Client(transport, protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol);
  client._seqid = seqid - 1;
  client[method](...args, () => {});
  return Buffer.concat(sent);
}

describe('hand-encoded Thrift calls of the reliability suites', () => {
  for (const protocol of ['binary', 'compact'] as const) {
    const wire = WIRES[`thrift-${protocol}`];
    it(`${protocol}: echo and hashRounds match the generated client`, () => {
      for (const seqid of [0, 1, 300, 2 ** 31 - 1]) {
        const data = Buffer.from(`payload ${seqid}`);
        expect(wire.work(seqid, data)).toEqual(generated(protocol, 'echo', [data], seqid));
        const rounds = 40;
        const id = Buffer.alloc(4);
        id.writeInt32BE(seqid);
        expect(wire.spin(seqid, rounds * 2.5)).toEqual(generated(protocol, 'hashRounds', [id, rounds], seqid));
      }
    });
  }
});
