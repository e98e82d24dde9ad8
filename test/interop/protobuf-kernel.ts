// The example Pricing service on a kernel transport, called by kmux's protobuf client and by
// the Python client: sockmap and native on the host (protobuf-sockmap.test.ts,
// protobuf-native.test.ts), KCM in the VM
// (test/kernel/protobuf-kcm.test.ts). Here the workers read the envelopes themselves, so
// statuses and deadlines come from the protobuf codec's worker half (peek, errorReply).
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Status } from '@kmux/protobuf';
import {
  PRICING_BUNDLE,
  TRUNCATED_PAYLOADS,
  expectedQuote,
  generatePythonBindings,
  rawEnvelopeConnection,
  runPythonClient,
  servePricing,
} from './protobuf-pricing.js';

export function describeProtobufOverKernel(transport: 'kcm' | 'sockmap' | 'native', label: string = transport): void {
  describe(`${label}: protobuf Pricing service on the ${transport} transport`, () => {
    let generated: string;
    beforeAll(async () => {
      generated = await generatePythonBindings();
    });
    afterAll(async () => {
      if (generated) await rm(generated, { recursive: true, force: true });
    });
    const pricing = servePricing(PRICING_BUNDLE, { transport, clientTimeoutMs: 60_000 });

    it('kmux client: results, handler statuses and pipelined calls', async () => {
      const { server, client } = pricing;
      expect(server.transport?.name).toBe(transport);
      expect(await client.getPrice({ sku: 'kb-001' })).toMatchObject({ sku: 'kb-001', unitPriceCents: 8900, currency: 'EUR' });
      const lines = [
        { sku: 'kb-001', quantity: 12 },
        { sku: 'ms-002', quantity: 150 },
      ];
      const quote = await client.quoteBasket({ lines, signingRounds: 200 });
      const expected = expectedQuote(lines, 200);
      expect(quote).toMatchObject({ ...expected, signature: Buffer.from(expected.signature) });
      await expect(client.getPrice({ sku: 'zz-999' })).rejects.toMatchObject({ status: Status.NOT_FOUND });
      const data = Array.from({ length: 100 }, (_, i) => Buffer.from(`echo ${i} `.repeat(1 + (i % 5))));
      const echoes = await Promise.all(data.map((d) => client.echo({ data: d })));
      echoes.forEach((reply, i) => expect(Buffer.from(reply.data)).toEqual(data[i]));
    });

    it('raw envelopes: UNIMPLEMENTED, INVALID_ARGUMENT, DEADLINE_EXCEEDED (envelope and per-method), and a non-envelope closes', async () => {
      const { connection, call } = rawEnvelopeConnection(pricing.port, 60_000);
      try {
        expect(await call('Refund', new Uint8Array(0))).toMatchObject({ status: Status.UNIMPLEMENTED });
        const malformed = await call('GetPrice', Buffer.from([0x0a, 0xff, 0xff, 0xff]));
        expect(malformed.status).toBe(Status.INVALID_ARGUMENT);
        const sleep5s = Buffer.from([0x08, 0x88, 0x27]); // SleepRequest { ms: 5000 }
        expect(await call('Sleep', sleep5s, 200)).toMatchObject({
          status: Status.DEADLINE_EXCEEDED,
          message: 'Sleep exceeded its 200 ms deadline',
        });
        expect(await call('Sleep', sleep5s)).toMatchObject({
          status: Status.DEADLINE_EXCEEDED,
          message: 'Sleep exceeded its 1500 ms deadline',
        });
        const thriftCall = Buffer.from('80010001000000084765745072696365', 'hex');
        await expect(connection.request(1_000, thriftCall)).rejects.toMatchObject({ kind: 'connection_closed' });
      } finally {
        connection.close();
      }
    });

    it('INVALID_ARGUMENT for every payload with a field longer than what is left of its message', async () => {
      const { connection, call } = rawEnvelopeConnection(pricing.port, 60_000);
      try {
        for (const { method, what, payload } of TRUNCATED_PAYLOADS) {
          const reply = await call(method, payload);
          expect({ what, status: reply.status }).toEqual({ what, status: Status.INVALID_ARGUMENT });
        }
      } finally {
        connection.close();
      }
    });

    it('the Python client passes all its checks', async () => {
      const lines = await runPythonClient(pricing.port, generated, 100_000);
      expect(lines.filter((line) => line.startsWith('passed:'))).toHaveLength(10);
      expect(lines.at(-1)).toBe('ok');
    });
  });
}
