// The example Catalog service as the interop tests use it: its generated code and the
// thrift library, both loaded from examples/ so they are the instances the server loads.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Server, type TransportName } from '@kmux/core';
import { thriftCodec, type ThriftProtocolName } from '@kmux/thrift';

export const EXAMPLE_DIR = fileURLToPath(new URL('../../examples/thrift/', import.meta.url));
const requireExample = createRequire(EXAMPLE_DIR);

// Generated JS and the untyped-in-this-context library, driven by method name.
export const thrift: any = requireExample('thrift');
export const Catalog: any = requireExample('./gen-nodejs/Catalog.js');
export const catalogTypes: any = requireExample('./gen-nodejs/catalog_types.js');

const quietLogger = { info: () => undefined, warn: console.warn, error: console.error };

/** A kmux Server with 2 workers serving the example Catalog service. */
export async function startCatalogServer(
  protocol: ThriftProtocolName,
  options: { methodDeadlines?: Record<string, number>; transport?: TransportName | 'auto' } = {},
) {
  const server = new Server({
    codec: thriftCodec({
      service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`,
      handler: `${EXAMPLE_DIR}handler.js`,
      protocol,
    }),
    workers: 2,
    logger: quietLogger,
    ...options,
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, port };
}

/** What the example handler's hashRounds computes: digest = sha256(digest ‖ data), from digest = data. */
export function expectedHashRounds(data: Buffer, rounds: number): Buffer {
  let digest = data;
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(Buffer.concat([digest, data])).digest();
  return digest;
}
