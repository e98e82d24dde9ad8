// kmux's protobuf client, and raw envelopes through the core Client, against a kmux Server
// with 2 workers serving the example Pricing service, loaded from either schema form.
import { describe, expect, it, vi } from 'vitest';
import { UNKNOWN_METHOD } from '@kmux/core';
import { Status } from '@kmux/protobuf';
import { SCHEMAS, TRUNCATED_PAYLOADS, expectedQuote, rawEnvelopeConnection, servePricing } from './protobuf-pricing.js';

for (const [form, schema] of SCHEMAS) {
  describe(`protobuf interop, service from a ${form}`, () => {
    const pricing = servePricing(schema);

    /** A raw connection speaking the envelope, for what the typed client never sends. */
    const rawConnection = () => rawEnvelopeConnection(pricing.port, 10_000);

    it('returns decoded messages for cheap and CPU-heavy calls', async () => {
      const { client } = pricing;
      expect(await client.getPrice({ sku: 'kb-001' })).toMatchObject({
        sku: 'kb-001',
        title: 'Mechanical keyboard',
        unitPriceCents: 8900,
        currency: 'EUR',
      });
      const lines = [
        { sku: 'kb-001', quantity: 12 },
        { sku: 'ms-002', quantity: 150 },
        { sku: 'mn-003', quantity: 1 },
      ];
      const quote = await client.quoteBasket({ lines, signingRounds: 2_000 });
      const expected = expectedQuote(lines, 2_000);
      expect(quote).toMatchObject({ ...expected, signature: Buffer.from(expected.signature) });
    });

    it('rejects with an RpcError carrying the status: the handler’s, or INVALID_ARGUMENT for a request that does not verify', async () => {
      const { server, client } = pricing;
      await expect(client.getPrice({ sku: 'zz-999' })).rejects.toMatchObject({
        name: 'RpcError',
        status: Status.NOT_FOUND,
        message: "no item with sku 'zz-999'",
      });
      await expect(client.quoteBasket({ lines: [{ sku: 'kb-001', quantity: 0 }], signingRounds: 1 })).rejects.toMatchObject({
        status: Status.INVALID_ARGUMENT,
        message: "quantity of 'kb-001' must be 1..10000, got 0",
      });
      const received = server.stats().requests.received;
      await expect(client.getPrice({ sku: 42 } as unknown as { sku: string })).rejects.toMatchObject({
        status: Status.INVALID_ARGUMENT,
        message: 'GetPrice: invalid GetPriceRequest: sku: string expected',
      });
      expect(server.stats().requests.received).toBe(received); // never sent
    });

    it('pipelines calls on one connection: fast replies overtake a slow one, each matched to its call', async () => {
      const { client } = pricing;
      await Promise.all(Array.from({ length: 20 }, () => client.echo({ data: Buffer.from('warm-up') })));
      const finished: string[] = [];
      const slow = client.sleep({ ms: 800 }).then(({ ms }) => finished.push(`sleep ${ms}`));
      const echoes = Array.from({ length: 200 }, async (_, i) => {
        const data = Buffer.from(`payload ${i} `.repeat(1 + (i % 7)));
        expect((await client.echo({ data })).data).toEqual(data);
        finished.push('echo');
      });
      const quotes = [1, 50, 400].map(async (quantity) => {
        const lines = [{ sku: 'mn-003', quantity }];
        expect((await client.quoteBasket({ lines, signingRounds: 500 })).totalCents).toBe(expectedQuote(lines, 500).totalCents);
      });
      await Promise.all([slow, ...echoes, ...quotes]);
      expect(finished).toHaveLength(201);
      expect(finished.at(-1)).toBe('sleep 800');
    });

    it("honours deadlines: the one sent in the envelope, the server's per method, and the client call's own", async () => {
      const { server, client } = pricing;
      const deadlineOutcomes = () => server.stats().requests.outcomes.deadline_exceeded ?? 0;
      const sleep5s = Buffer.from([0x08, 0x88, 0x27]); // SleepRequest { ms: 5000 }
      // The raw connection's own timer is 10 s: only the server's reading of the envelope can answer sooner.
      const { connection, call } = rawConnection();
      try {
        const sentAt = Date.now();
        const before = deadlineOutcomes();
        expect(await call('Sleep', sleep5s, 200)).toMatchObject({
          status: Status.DEADLINE_EXCEEDED,
          message: 'Sleep exceeded its 200 ms deadline',
        });
        expect(Date.now() - sentAt).toBeLessThan(900);
        expect(deadlineOutcomes()).toBe(before + 1);

        // No deadline in the envelope: methodDeadlines.Sleep (1.5 s) applies, keyed by the declared name.
        expect(await call('Sleep', sleep5s)).toMatchObject({
          status: Status.DEADLINE_EXCEEDED,
          message: 'Sleep exceeded its 1500 ms deadline',
        });
      } finally {
        connection.close();
      }

      // The typed client gives up after the call's deadline, and sends it: the server gives up too, long before its own 1.5 s.
      const sentAt = Date.now();
      const before = deadlineOutcomes();
      await expect(client.sleep({ ms: 5_000 }, { timeoutMs: 200 })).rejects.toMatchObject({
        status: Status.DEADLINE_EXCEEDED,
        message: 'Sleep exceeded its 200 ms deadline',
      });
      await vi.waitFor(() => expect(deadlineOutcomes()).toBe(before + 1), { timeout: 600, interval: 10 });
      expect(Date.now() - sentAt).toBeLessThan(900);
      expect(await client.sleep({ ms: 1 })).toMatchObject({ ms: 1 }); // the connection is still good
    });

    it('answers INVALID_ARGUMENT to every payload with a field longer than what is left of its message, and serves on', async () => {
      const { connection, call } = rawConnection();
      try {
        for (const { method, what, payload } of TRUNCATED_PAYLOADS) {
          const reply = await call(method, payload);
          expect({ what, status: reply.status }).toEqual({ what, status: Status.INVALID_ARGUMENT });
          expect(reply.message).toMatch(/^cannot decode the \w+/);
        }
        expect(await pricing.client.getPrice({ sku: 'kb-001' })).toMatchObject({ sku: 'kb-001' });
      } finally {
        connection.close();
      }
    });

    it('answers UNIMPLEMENTED and INVALID_ARGUMENT on the same connection, and closes it for a frame that is no envelope', async () => {
      const { server } = pricing;
      const { connection, call } = rawConnection();
      try {
        expect(await call('Refund', new Uint8Array(0))).toMatchObject({
          status: Status.UNIMPLEMENTED,
          message: "unknown method 'Refund' in kmux.example.v1.Pricing",
        });
        const malformed = await call('GetPrice', Buffer.from([0x0a, 0xff, 0xff, 0xff]));
        expect(malformed.status).toBe(Status.INVALID_ARGUMENT);
        expect(malformed.message).toMatch(/^cannot decode the GetPriceRequest of GetPrice/);

        const protocolErrors = server.stats().connectionErrors.protocol ?? 0;
        const thriftCall = Buffer.from('80010001000000084765745072696365', 'hex');
        await expect(connection.request(1_000, thriftCall)).rejects.toMatchObject({ kind: 'connection_closed' });
        expect(server.stats().connectionErrors.protocol).toBe(protocolErrors + 1);
      } finally {
        connection.close();
      }
      // Refund is not in the service: counted under <unknown>, not as a series of its own.
      const methods = server.stats().methods;
      expect(methods.GetPrice!.calls).toBeGreaterThan(0);
      expect(methods.Refund).toBeUndefined();
      expect(methods[UNKNOWN_METHOD]!.failures).toBeGreaterThan(0);
    });
  });
}
