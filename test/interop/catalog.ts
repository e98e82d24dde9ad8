// The example Catalog service as the interop tests use it: its generated code and the
// thrift library, both loaded from examples/ so they are the instances the server loads, the
// stock client, and the pipelined out-of-order check the user-space and sockmap tests share.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { Server, type ServerCodec, type ServerOptions } from '@kmux/core';
import { thriftCodec, type ThriftProtocolName } from '@kmux/thrift';

export const EXAMPLE_DIR = fileURLToPath(new URL('../../examples/thrift/', import.meta.url));
const requireExample = createRequire(EXAMPLE_DIR);

// Generated JS and the untyped-in-this-context library, driven by method name.
export const thrift: any = requireExample('thrift');
export const Catalog: any = requireExample('./gen-nodejs/Catalog.js');
export const catalogTypes: any = requireExample('./gen-nodejs/catalog_types.js');

const quietLogger = { info: () => undefined, warn: console.warn, error: console.error };

/** A kmux Server with 2 workers serving the example Catalog service. */
export function startCatalogServer(protocol: ThriftProtocolName, options: Omit<ServerOptions, 'codec'> = {}) {
  return startServer(thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: `${EXAMPLE_DIR}handler.js`, protocol }), options);
}

/** A kmux Server with 2 workers serving `codec` on a free loopback port. */
export async function startServer(codec: ServerCodec, options: Omit<ServerOptions, 'codec'> = {}) {
  const server = new Server({ codec, workers: 2, logger: quietLogger, ...options });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, port };
}

/** The bytes the stock client sends for echo(payload) on its default buffered transport: one message, no length prefix. */
export function unframedEcho(protocol: ThriftProtocolName, payload: Buffer): Buffer {
  let sent: Buffer | undefined;
  const transport = new thrift.TBufferedTransport(undefined, (message: Buffer) => (sent = message));
  const client = new Catalog.Client(transport, protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol);
  client.echo(payload, () => undefined);
  return sent!;
}

/** What the example handler's hashRounds computes: digest = sha256(digest ‖ data), from digest = data. */
export function expectedHashRounds(data: Buffer, rounds: number): Buffer {
  let digest = data;
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(Buffer.concat([digest, data])).digest();
  return digest;
}

/**
 * The stock Thrift Node client over one connection, its callback methods as promises: framed,
 * or on its default buffered (unframed) transport.
 */
export function stockClient(port: number, protocol: ThriftProtocolName, transport: 'framed' | 'buffered' = 'framed') {
  const connection = thrift.createConnection('127.0.0.1', port, {
    transport: transport === 'framed' ? thrift.TFramedTransport : thrift.TBufferedTransport,
    protocol: protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol,
  });
  const client = thrift.createClient(Catalog, connection);
  const call = (method: string, ...args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => client[method](...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
  return { call, close: () => connection.end() };
}

/**
 * Pipelines on one stock-client connection a slow sleep(slowMs), then 200 echoes, 3 hashRounds
 * and a lookup, and checks that each reply is its own call's and that the fast calls overtook
 * the slow one.
 */
export async function expectPipelinedOutOfOrder(call: ReturnType<typeof stockClient>['call'], slowMs: number): Promise<void> {
  // Warm both workers up first, so no fast call waits for a worker to load the service.
  await Promise.all(Array.from({ length: 20 }, () => call('echo', Buffer.from('warm-up'))));
  const finished: string[] = [];
  const slow = call('sleep', slowMs).then((ms) => finished.push(`sleep ${ms}`));
  const echoes = Array.from({ length: 200 }, (_, i) => {
    const payload = Buffer.from(`payload ${i} `.repeat(1 + (i % 7)));
    return call('echo', payload).then((reply) => {
      expect(reply).toEqual(payload);
      finished.push('echo');
    });
  });
  const data = Buffer.from('catalog');
  const hashes = [1, 50, 400].map((rounds) =>
    call('hashRounds', data, rounds).then((digest) => expect(digest).toEqual(expectedHashRounds(data, rounds))),
  );
  const item = call('lookup', new catalogTypes.Query({ sku: 'ms-002' }));
  await Promise.all([slow, ...echoes, ...hashes]);
  expect(await item).toMatchObject({ sku: 'ms-002', title: 'Wireless mouse', priceCents: 2900 });
  // The slow call went out first; the 200 fast ones overtook it on the same connection.
  expect(finished).toHaveLength(201);
  expect(finished.at(-1)).toBe(`sleep ${slowMs}`);
}
