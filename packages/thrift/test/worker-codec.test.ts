import { beforeAll, describe, expect, it } from 'vitest';
import thrift from 'thrift';
import { DeadlineExceededError, OverloadedError, ProtocolError, type WorkerCodec, type WorkerResult } from '@kmux/core';
import { thriftCodec, type ThriftProtocolName } from '@kmux/thrift';
import {
  CATALOG_SERVICE,
  FIXTURE_HANDLER,
  PARTIAL_HANDLER,
  PROTOCOLS,
  catalogTypes,
  decodeApplicationException,
  decodeReply,
  encodeCall,
  recordedViews,
} from './helpers.js';

const { TApplicationExceptionType: T, MessageType } = thrift.Thrift;
const call = { method: '', deadline: Date.now() + 60_000 };

/** Builds the worker half the way a kmux worker does: from the codec's worker spec. */
async function workerCodec(protocol: ThriftProtocolName, handler = FIXTURE_HANDLER): Promise<WorkerCodec> {
  const { worker } = thriftCodec({ service: CATALOG_SERVICE, handler, protocol });
  const { createWorkerCodec } = (await import(worker.module)) as typeof import('../src/worker-codec.js');
  return createWorkerCodec(worker.options);
}

for (const protocol of PROTOCOLS) {
  describe(`worker codec (${protocol})`, () => {
    let codec: WorkerCodec;
    beforeAll(async () => {
      codec = await workerCodec(protocol);
    });

    async function run(method: string, args: unknown[], seqid = 11) {
      const result = await codec.handle(encodeCall(protocol, method, args, seqid), call);
      return { result, decoded: result.reply ? decodeReply(protocol, method, result.reply) : null };
    }

    it('answers a promise-returning handler', async () => {
      const { result, decoded } = await run('lookup', [new catalogTypes.Query({ sku: 'kb-001' })], 21);
      expect(result.failed).toBe(false);
      expect(decoded).toMatchObject({ name: 'lookup', type: MessageType.REPLY, seqid: 21, error: null });
      expect(decoded!.value).toMatchObject({ sku: 'kb-001', title: 'Keyboard', priceCents: 8900, tags: ['input'] });
    });

    it('answers a node-callback handler that calls back later', async () => {
      const { result, decoded } = await run('hashRounds', [Buffer.from('ab'), 3]);
      expect(result.failed).toBe(false);
      expect(decoded!.value).toEqual(Buffer.from([0x61, 0x62, 3]));
    });

    it('answers a synchronous handler synchronously', () => {
      const result = codec.handle(encodeCall(protocol, 'echo', [Buffer.from('hello')]), call) as WorkerResult;
      expect(result).not.toBeInstanceOf(Promise);
      expect(decodeReply(protocol, 'echo', result.reply!).value).toEqual(Buffer.from('hello'));
    });

    it('sends declared exceptions as the declared type, counted as declared exceptions, not failures', async () => {
      const thrown = await run('lookup', [new catalogTypes.Query({ sku: 'zz-999' })]);
      expect(thrown.result).toMatchObject({ failed: false, declaredException: true });
      expect(thrown.decoded!.type).toBe(MessageType.REPLY);
      expect(thrown.decoded!.error).toBeInstanceOf(catalogTypes.ItemNotFound);
      expect(thrown.decoded!.error).toMatchObject({ sku: 'zz-999', message: 'not here' });

      const calledBack = await run('hashRounds', [Buffer.from('ab'), 0]);
      expect(calledBack.result).toMatchObject({ failed: false, declaredException: true });
      expect(calledBack.decoded!.error).toBeInstanceOf(catalogTypes.InvalidArgument);
    });

    it('turns undeclared errors into TApplicationException INTERNAL_ERROR', async () => {
      for (const [method, args, message] of [
        ['lookup', [new catalogTypes.Query({ sku: 'explode' })], 'database unreachable'],
        ['hashRounds', [Buffer.from('ab'), -1], 'negative rounds -1'],
        ['hashRounds', [Buffer.from('ab'), 1], /cannot encode the reply of hashRounds/],
      ] as const) {
        const { result, decoded } = await run(method, [...args], 31);
        expect(result.failed, method).toBe(true);
        expect(decoded, method).toMatchObject({ type: MessageType.EXCEPTION, seqid: 31, name: method });
        expect(decoded!.error, method).toBeInstanceOf(thrift.Thrift.TApplicationException);
        expect((decoded!.error as { type: number }).type, method).toBe(T.INTERNAL_ERROR);
        expect((decoded!.error as Error).message, method).toMatch(message);
      }
    });

    it('answers UNKNOWN_METHOD for methods the service or the handler lacks', async () => {
      const body = Buffer.from(encodeCall(protocol, 'echo', [Buffer.from('x')], 5).toString('latin1').replace('echo', 'ecco'), 'latin1');
      const unknown = await codec.handle(body, call);
      expect(unknown.failed).toBe(true);
      expect(decodeApplicationException(protocol, unknown.reply!)).toMatchObject({
        name: 'ecco',
        seqid: 5,
        exception: { type: T.UNKNOWN_METHOD, message: 'unknown method ecco' },
      });

      const partial = await workerCodec(protocol, PARTIAL_HANDLER);
      expect((await partial.handle(encodeCall(protocol, 'echo', [Buffer.from('x')]), call)).failed).toBe(false);
      const missing = await partial.handle(encodeCall(protocol, 'sleep', [1], 6), call);
      expect(decodeApplicationException(protocol, missing.reply!).exception.type).toBe(T.UNKNOWN_METHOD);
    });

    it('answers PROTOCOL_ERROR for arguments that do not decode', async () => {
      const whole = encodeCall(protocol, 'hashRounds', [Buffer.alloc(64, 1), 3], 8);
      const headerEnd = whole.indexOf('hashRounds') + 'hashRounds'.length + (protocol === 'binary' ? 4 : 0);
      const bodies = [
        whole.subarray(0, whole.length - 10), // truncated inside the binary argument
        Buffer.concat([whole.subarray(0, headerEnd), Buffer.from([0x0b, 0x00, 0x01, 0x7f, 0xff, 0xff, 0xff])]),
        Buffer.concat([whole.subarray(0, headerEnd), Buffer.from([0xee, 0xee, 0xee])]),
      ];
      for (const body of bodies) {
        const result = await codec.handle(body, call);
        expect(result.failed, body.toString('hex')).toBe(true);
        const { exception, seqid } = decodeApplicationException(protocol, result.reply!);
        expect(seqid).toBe(8);
        expect(exception.type, body.toString('hex')).toBe(T.PROTOCOL_ERROR);
        expect(exception.message).toMatch(/cannot decode the arguments of hashRounds/);
      }
    });

    it('runs oneway calls without a reply', async () => {
      const before = recordedViews().length;
      const ok = await codec.handle(encodeCall(protocol, 'recordView', [`sku-${protocol}`]), call);
      expect(ok).toEqual({ reply: null, failed: false });
      expect(recordedViews().slice(before)).toEqual([`sku-${protocol}`]);
      expect(await codec.handle(encodeCall(protocol, 'recordView', ['explode']), call)).toEqual({
        reply: null,
        failed: true,
        outcome: { statusCode: 'INTERNAL_ERROR', errorType: 'INTERNAL_ERROR', message: 'oneway failure' },
      });
    });

    it('reads request heads and answers errors for kernel transports (peek, errorReply)', () => {
      const body = encodeCall(protocol, 'lookup', [new catalogTypes.Query({ sku: 'kb-001' })], 41);
      expect(codec.peek!(body)).toEqual({ id: 41, method: 'lookup', oneway: false });
      const reply = codec.errorReply!(body, new DeadlineExceededError('lookup', 20))!;
      const decoded = decodeApplicationException(protocol, reply);
      expect(decoded).toMatchObject({ name: 'lookup', type: MessageType.EXCEPTION, seqid: 41 });
      expect(decoded.exception).toMatchObject({ type: T.INTERNAL_ERROR, message: expect.stringMatching(/^deadline exceeded: /) });
      // A oneway call is owed nothing; a frame with an unreadable head cannot be answered.
      const oneway = encodeCall(protocol, 'recordView', ['x'], 42);
      expect(codec.peek!(oneway)).toEqual({ id: 42, method: 'recordView', oneway: true });
      expect(codec.errorReply!(oneway, new OverloadedError('connection', 1))).toBeNull();
      expect(codec.errorReply!(Buffer.from('garbage!'), new OverloadedError('connection', 1))).toBeNull();
      expect(() => codec.peek!(Buffer.from('garbage!'))).toThrow(ProtocolError);
    });

    it('answers a frame whose header is garbage instead of throwing', async () => {
      const result = await codec.handle(Buffer.from('garbage!'), call);
      expect(result.failed).toBe(true);
      expect(decodeApplicationException(protocol, result.reply!).exception.type).toBe(T.PROTOCOL_ERROR);
    });
  });
}
