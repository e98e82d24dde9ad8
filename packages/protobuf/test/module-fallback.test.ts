// A user's project without its own `@kmux/protobuf`: a handler importing RpcError and Status
// from it lives in a directory with no node_modules anywhere above it, and kmux serves it with
// its own copy instead of failing with "Cannot find package '@kmux/protobuf'".
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server } from '@kmux/core';
import { RpcError, Status, createProtobufClient, loadService, protobufCodec } from '@kmux/protobuf';
import { PRICING_PROTO, PRICING_SERVICE } from './helpers.js';

describe("a protobuf handler in a project without '@kmux/protobuf'", () => {
  const project = mkdtempSync(join(tmpdir(), 'kmux-no-protobuf-'));
  let server: Server;
  let port: number;
  beforeAll(async () => {
    cpSync(join(dirname(PRICING_PROTO), 'handler.mjs'), join(project, 'handler.mjs')); // imports '@kmux/protobuf'
    for (let dir = project; dir !== dirname(dir); dir = dirname(dir)) expect(existsSync(join(dir, 'node_modules', '@kmux'))).toBe(false);
    server = new Server({
      codec: protobufCodec({ schema: PRICING_PROTO, service: PRICING_SERVICE, handler: join(project, 'handler.mjs') }),
      workers: 2,
      logger: { info: () => {}, warn: () => {}, error: console.error },
    });
    ({ port } = await server.listen({ host: '127.0.0.1', port: 0 }));
  });
  afterAll(async () => {
    await server?.close();
    rmSync(project, { recursive: true, force: true });
  });

  it('serves it with kmux’s own @kmux/protobuf, its RpcError statuses included', async () => {
    const pricing = createProtobufClient(await loadService(PRICING_PROTO, PRICING_SERVICE), { port });
    try {
      expect(await pricing.getPrice({ sku: 'ms-002' })).toMatchObject({ unitPriceCents: 2900 });
      const notFound = await pricing.getPrice({ sku: 'nope' }).catch((e: unknown) => e);
      expect(notFound).toBeInstanceOf(RpcError);
      expect(notFound).toMatchObject({ status: Status.NOT_FOUND });
    } finally {
      pricing.close();
    }
  });
});
