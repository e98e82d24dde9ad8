// A user's project without its own `thrift`: the generated code and a handler that requires
// it live in a directory with no node_modules anywhere above it, and kmux serves them with
// its own copy instead of failing with "Cannot find module 'thrift'".
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server } from '@kmux/core';
import { createThriftClient, thriftCodec } from '@kmux/thrift';
import { CATALOG_SERVICE, Catalog, catalogTypes } from './helpers.js';

const EXAMPLE = dirname(dirname(CATALOG_SERVICE));

describe("generated Thrift code in a project without 'thrift'", () => {
  const project = mkdtempSync(join(tmpdir(), 'kmux-no-thrift-'));
  let server: Server;
  let port: number;
  // pnpm exec puts its hoisted node_modules on NODE_PATH, which worker threads inherit; a user's
  // process has none of that.
  const nodePath = process.env.NODE_PATH;
  beforeAll(async () => {
    delete process.env.NODE_PATH;
    cpSync(join(EXAMPLE, 'gen-nodejs'), join(project, 'gen-nodejs'), { recursive: true });
    cpSync(join(EXAMPLE, 'handler.js'), join(project, 'handler.js')); // requires ./gen-nodejs/catalog_types, which requires 'thrift'
    for (let dir = project; dir !== dirname(dir); dir = dirname(dir)) expect(existsSync(join(dir, 'node_modules', 'thrift'))).toBe(false);
    server = new Server({
      codec: thriftCodec({ service: join(project, 'gen-nodejs', 'Catalog.js'), handler: join(project, 'handler.js') }),
      workers: 2,
      logger: { info: () => {}, warn: () => {}, error: console.error },
    });
    ({ port } = await server.listen({ host: '127.0.0.1', port: 0 }));
  });
  afterAll(async () => {
    if (nodePath !== undefined) process.env.NODE_PATH = nodePath;
    await server?.close();
    rmSync(project, { recursive: true, force: true });
  });

  it('serves it with kmux’s own thrift, declared exceptions included', async () => {
    const client = createThriftClient(Catalog as typeof import('../../../examples/thrift/gen-nodejs/Catalog.js'), { port });
    try {
      expect(await client.lookup(new catalogTypes.Query({ sku: 'kb-001' }))).toMatchObject({ sku: 'kb-001' });
      // The handler's ItemNotFound comes from the copy's generated types: it still reaches the client as ItemNotFound.
      await expect(client.lookup(new catalogTypes.Query({ sku: 'nope' }))).rejects.toBeInstanceOf(catalogTypes.ItemNotFound);
    } finally {
      client.close();
    }
  });
});
