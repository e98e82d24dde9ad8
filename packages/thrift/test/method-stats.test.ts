// Per-method stats that a client cannot hide: a Thrift server counts only the methods its
// IDL declares, every other name under one <unknown> series (300 bogus names used to take
// the 256 slots from the real methods), and declared exceptions as such, not as failures.
// On user space (the main thread counts) and sockmap (the workers count in shared memory).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import thrift from 'thrift';
import { Client, Server, UNKNOWN_METHOD, type TransportName } from '@kmux/core';
import { readMessageHead, thriftClientCodec, thriftCodec } from '@kmux/thrift';
import { CATALOG_SERVICE, FIXTURE_HANDLER, capturingTransport, catalogTypes, encodeCall } from './helpers.js';

const BOGUS_NAMES = 300;
const DECLARED = ['lookup', 'hashRounds', 'echo', 'sleep', 'recordView'];

/** A CALL of `name` with no arguments: what a client may send for a method nobody declared. */
function bogusCall(name: string, seqid: number): Buffer {
  const sent: Buffer[] = [];
  const output = new thrift.TBinaryProtocol(capturingTransport((message) => sent.push(message)));
  output.writeMessageBegin(name, thrift.Thrift.MessageType.CALL, seqid);
  output.writeStructBegin('args');
  output.writeFieldStop();
  output.writeStructEnd();
  output.writeMessageEnd();
  output.flush();
  return sent[0]!;
}

for (const transport of ['userspace', 'sockmap'] as const satisfies readonly TransportName[]) {
  describe(`Thrift method stats (${transport})`, () => {
    let server: Server;
    let client: Client;
    beforeAll(async () => {
      server = new Server({
        codec: thriftCodec({ service: CATALOG_SERVICE, handler: FIXTURE_HANDLER }),
        workers: 2,
        transport,
        logger: { info: () => {}, warn: () => {}, error: console.error },
      });
      const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
      client = new Client({ port, codec: thriftClientCodec('binary') });
      let seqid = 1;
      const calls = [
        ...Array.from({ length: BOGUS_NAMES }, (_, i) => bogusCall(`bogus${i}`, seqid++)),
        encodeCall('binary', 'lookup', [new catalogTypes.Query({ sku: 'kb-001' })], seqid++),
        encodeCall('binary', 'lookup', [new catalogTypes.Query({ sku: 'zz-999' })], seqid++), // ItemNotFound, declared
        encodeCall('binary', 'echo', [Buffer.from('x')], seqid++),
      ];
      await Promise.all(calls.map((body) => client.request(readMessageHead(body, 'binary').seqid, body)));
      // sockmap: a worker posts a method's tally (shared memory) at its first call, and that can
      // reach this thread after the reply reaches the client.
      const counted = (): number => Object.values(server.stats().methods).reduce((sum, method) => sum + method.calls, 0);
      for (const giveUp = Date.now() + 10_000; counted() < calls.length && Date.now() < giveUp; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    afterAll(async () => {
      client.close();
      await server.close();
    });

    it('keeps a series for each declared method and one <unknown> for every other name', () => {
      const { methods } = server.stats();
      expect(Object.keys(methods).sort()).toEqual(['echo', 'lookup', UNKNOWN_METHOD].sort());
      expect(methods[UNKNOWN_METHOD]).toMatchObject({ calls: BOGUS_NAMES, failures: BOGUS_NAMES });
      expect(DECLARED).toEqual(expect.arrayContaining(Object.keys(methods).filter((m) => m !== UNKNOWN_METHOD)));
      expect(server.metrics()).toContain(`kmux_method_calls_total{method="${UNKNOWN_METHOD}"} ${BOGUS_NAMES}`);
    });

    it('counts a declared exception as an exception, not a failure', () => {
      const { methods, requests } = server.stats();
      expect(methods.lookup).toMatchObject({ calls: 2, exceptions: 1, failures: 0 });
      expect(requests.outcomes.exception).toBe(1);
      expect(server.metrics()).toContain('kmux_method_exceptions_total{method="lookup"} 1');
    });
  });
}
