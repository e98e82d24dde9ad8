// What a Thrift server checks when its workers load the handler module, and the per-worker
// init() hook: a module that fails to load names its file and line, a handler function that
// matches no IDL method fails the start with the valid names, an IDL method without a
// function is a warning naming it (once, not once per worker), and init() runs in each
// worker before it serves.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, Server, type Logger } from '@kmux/core';
import { readMessageHead, thriftClientCodec, thriftCodec } from '@kmux/thrift';
import { CATALOG_SERVICE, decodeReply, encodeCall } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kmux-handlers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function handlerFile(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

const warnings: string[] = [];
const logger: Logger = { info: () => {}, warn: (m) => warnings.push(m), error: () => {} };

async function serve(handler: string): Promise<Server & { port: number }> {
  const server = new Server({ codec: thriftCodec({ service: CATALOG_SERVICE, handler }), workers: 2, logger });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return Object.assign(server, { port });
}

describe('Thrift handler checks at start', () => {
  it('reports the file and line of a handler module that does not parse', async () => {
    const path = handlerFile('syntax.cjs', "module.exports = {\n  echo(data) { return data; },\n  lookup(query) { return query; ]\n};\n");
    await expect(serve(path)).rejects.toThrow(new RegExp(`cannot load handler module .*\\(at ${path}:3\\): SyntaxError`));
  });

  it('reports the file and line of a handler module that throws while loading', async () => {
    const path = handlerFile('throws.mjs', "export function echo(data) { return data; }\nthrow new Error('no database');\n");
    await expect(serve(path)).rejects.toThrow(new RegExp(`\\(at ${path}:2\\): Error: no database`));
  });

  it('fails the start on a handler function that matches no IDL method, listing the valid names', async () => {
    const path = handlerFile('typo.cjs', 'module.exports = { echo(d) { return d; }, lokup(q) { return q; } };\n');
    await expect(serve(path)).rejects.toThrow(
      /has 'lokup', which the service does not declare; its methods are: lookup, hashRounds, echo, sleep, blockFor, recordView \(and 'init'/,
    );
  });

  it('warns once about each IDL method the handler lacks, and serves the rest', async () => {
    warnings.length = 0;
    const server = await serve(handlerFile('partial.cjs', 'module.exports = { echo(d) { return d; } };\n'));
    await server.close();
    const missing = warnings.filter((w) => w.includes('calls to it will fail as an unknown method'));
    expect(missing.map((w) => /has no '(\w+)'/.exec(w)?.[1])).toEqual(['lookup', 'hashRounds', 'sleep', 'blockFor', 'recordView']);
  });

  it('runs init() once in each worker, and awaits it before the worker serves', async () => {
    const path = handlerFile(
      'init.cjs',
      [
        "const { threadId } = require('node:worker_threads');",
        'let inits = 0;',
        'let ready = false;',
        'module.exports = {',
        '  async init() { inits++; await new Promise((r) => setTimeout(r, 200)); ready = true; },',
        '  echo() { return Buffer.from(`${threadId}:${inits}:${ready}`); },',
        '};',
      ].join('\n'),
    );
    const server = await serve(path);
    const client = new Client({ port: server.port, codec: thriftClientCodec('binary') });
    try {
      const replies = await Promise.all(
        Array.from({ length: 16 }, async (_, i) => {
          const body = encodeCall('binary', 'echo', [Buffer.from('x')], i + 1);
          const reply = await client.request(readMessageHead(body, 'binary').seqid, body);
          return String(decodeReply('binary', 'echo', reply).value);
        }),
      );
      const byThread = new Map(replies.map((r) => [r.split(':')[0], r.split(':').slice(1).join(':')]));
      expect([...byThread.values()]).toEqual(Array(byThread.size).fill('1:true'));
    } finally {
      client.close();
      await server.close();
    }
  });

  it('fails the start when init() throws, naming the module', async () => {
    const path = handlerFile('init-fails.cjs', "module.exports = { init() { throw new Error('cache unreachable'); }, echo(d) { return d; } };\n");
    await expect(serve(path)).rejects.toThrow(`init() of handler module ${path} failed: cache unreachable`);
  });
});
