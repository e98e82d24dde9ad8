import { beforeAll, describe, expect, it } from 'vitest';
import { OverloadedError, type WorkerCodec, type WorkerResult } from '@kmux/core';
import { protobufCodec } from '@kmux/protobuf';
import {
  FIXTURE_HANDLER,
  PRICING_SERVICE,
  SCHEMAS,
  decodeMessage,
  encodeMessage,
  fixtureCalls,
  readResponse,
  requestFrame,
} from './helpers.js';

const deadline = Date.now() + 60_000;

/** Builds the worker half the way a kmux worker does: from the codec's worker spec. */
async function workerCodec(schema: string): Promise<WorkerCodec> {
  const { worker } = protobufCodec({ schema, service: PRICING_SERVICE, handler: FIXTURE_HANDLER });
  const { createWorkerCodec } = (await import(worker.module)) as typeof import('../src/worker-codec.js');
  return createWorkerCodec(worker.options);
}

for (const [form, schema] of SCHEMAS) {
  describe(`worker codec (${form})`, () => {
    let codec: WorkerCodec;
    beforeAll(async () => {
      codec = await workerCodec(schema);
    });

    /** Calls `method` with the serialized request `payload` and reads the Response. */
    async function call(method: string, payload: Uint8Array, id = 17) {
      const result = await codec.handle(requestFrame({ id, method, payload }), { deadline });
      return { failed: result.failed, ...readResponse(result.reply!) };
    }

    it('answers a synchronous handler synchronously, echoing the request id', () => {
      const body = requestFrame({ id: 2 ** 32 - 1, method: 'GetPrice', payload: encodeMessage('GetPriceRequest', { sku: 'kb-001' }) });
      const result = codec.handle(body, { deadline }) as WorkerResult;
      expect(result).not.toBeInstanceOf(Promise);
      const response = readResponse(result.reply!);
      expect(result.failed).toBe(false);
      expect(response).toMatchObject({ id: 2 ** 32 - 1, status: 'OK', message: '' });
      expect(decodeMessage('Price', response.payload)).toEqual({ sku: 'kb-001', title: 'Keyboard', unitPriceCents: 8900, currency: 'EUR' });
    });

    it("gives the handler the decoded request and the call's method and deadline", async () => {
      await call('GetPrice', encodeMessage('GetPriceRequest', { sku: 'kb-001' }));
      expect(fixtureCalls().at(-1)).toEqual({ method: 'GetPrice', deadline });
    });

    it('answers an asynchronous handler once it resolves', async () => {
      const payload = encodeMessage('QuoteRequest', { lines: [{ sku: 'kb-001', quantity: 3 }], signingRounds: 7 });
      const result = codec.handle(requestFrame({ id: 5, method: 'QuoteBasket', payload }), { deadline });
      expect(result).toBeInstanceOf(Promise);
      const response = readResponse((await result).reply!);
      expect(response.status).toBe('OK');
      expect(decodeMessage('Quote', response.payload)).toMatchObject({ lines: [{ sku: 'kb-001', quantity: 3 }], totalCents: 7 });
    });

    it('answers a method the service does not declare with UNIMPLEMENTED', async () => {
      expect(await call('Refund', new Uint8Array(0))).toEqual({
        failed: true,
        id: 17,
        status: 'UNIMPLEMENTED',
        message: "unknown method 'Refund' in kmux.example.v1.Pricing",
        payload: Buffer.alloc(0),
      });
    });

    it('answers a declared method the handler lacks with UNIMPLEMENTED, naming the missing function', async () => {
      expect(await call('Sleep', encodeMessage('SleepRequest', { ms: 1 }))).toMatchObject({
        failed: true,
        status: 'UNIMPLEMENTED',
        message: 'kmux.example.v1.Pricing.Sleep has no handler (sleep)',
      });
    });

    it('answers a payload that does not decode with INVALID_ARGUMENT, without calling the handler', async () => {
      const before = fixtureCalls().length;
      const response = await call('GetPrice', Buffer.from([0x0a, 0xff, 0xff, 0xff]));
      expect(response).toMatchObject({ failed: true, status: 'INVALID_ARGUMENT' });
      expect(response.message).toMatch(/^cannot decode the GetPriceRequest of GetPrice: /);
      expect(fixtureCalls()).toHaveLength(before);
    });

    it("answers a handler's RpcError with its status and message, thrown or rejected", async () => {
      expect(await call('GetPrice', encodeMessage('GetPriceRequest', { sku: 'zz-999' }))).toMatchObject({
        failed: true,
        status: 'NOT_FOUND',
        message: "no item with sku 'zz-999'",
      });
      expect(await call('QuoteBasket', encodeMessage('QuoteRequest', { signingRounds: 1 }))).toMatchObject({
        failed: true,
        status: 'INVALID_ARGUMENT',
        message: 'the basket is empty',
      });
    });

    it('answers any other handler failure with INTERNAL and its message', async () => {
      const line = { lines: [{ sku: 'kb-001', quantity: 1 }] };
      for (const [method, payload, message] of [
        ['GetPrice', encodeMessage('GetPriceRequest', { sku: 'explode' }), 'database unreachable'],
        ['QuoteBasket', encodeMessage('QuoteRequest', { ...line, signingRounds: 13 }), 'unlucky rounds'],
        ['QuoteBasket', encodeMessage('QuoteRequest', { ...line, signingRounds: 14 }), 'a bare string'],
      ] as const) {
        expect(await call(method, payload), message).toMatchObject({ failed: true, status: 'INTERNAL', message });
      }
    });

    it('answers a reply that is not a valid response message with INTERNAL, naming the problem', async () => {
      expect(await call('GetPrice', encodeMessage('GetPriceRequest', { sku: 'bad-reply' }))).toMatchObject({
        failed: true,
        status: 'INTERNAL',
        message: 'cannot encode the Price reply of GetPrice: unitPriceCents: integer expected',
      });
      expect(await call('GetPrice', encodeMessage('GetPriceRequest', { sku: 'no-reply' }))).toMatchObject({
        status: 'INTERNAL',
        message: 'cannot encode the Price reply of GetPrice: object expected',
      });
    });

    it('reads request heads and answers errors for kernel transports (peek, errorReply)', () => {
      const body = requestFrame({ id: 77, method: 'GetPrice', deadlineMs: 1500, payload: encodeMessage('GetPriceRequest', { sku: 'kb-001' }) });
      expect(codec.peek!(body)).toEqual({ id: 77, method: 'GetPrice', oneway: false, timeoutMs: 1500 });
      const reply = codec.errorReply!(body, new OverloadedError('connection', 3))!;
      expect(readResponse(reply)).toMatchObject({ id: 77, status: 'RESOURCE_EXHAUSTED', message: expect.stringMatching(/in-flight limit 3/) });
      expect(codec.errorReply!(Buffer.from([0xff, 0xff]), new OverloadedError('connection', 3))).toBeNull();
      expect(() => codec.peek!(Buffer.from([0xff, 0xff]))).toThrow();
    });

    it('answers with the request message itself when a handler returns it', async () => {
      const data = Buffer.from('round trip');
      const response = await call('Echo', encodeMessage('EchoMessage', { data }));
      expect(response).toMatchObject({ failed: false, status: 'OK' });
      expect(decodeMessage('EchoMessage', response.payload)).toEqual({ data });
    });
  });
}
