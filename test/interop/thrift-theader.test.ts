// THeader (0x0FFF) framing with the thrift npm library's own THeaderProtocol client, and
// Debian's python3-thrift THeaderTransport: detected per frame beside plain framed clients,
// answered in kind, headers handed to the handler, client_timeout as the call's deadline.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { EXAMPLE_DIR, startServer, stockClient, thrift } from './catalog.js';
import { headerClient } from './theader-client.js';

const HANDLER = fileURLToPath(new URL('./fixtures/theader-handler.mjs', import.meta.url));
const CLIENT_SCRIPT = fileURLToPath(new URL('./theader_client.py', import.meta.url));
const { TApplicationException } = thrift.Thrift;

for (const protocol of ['binary', 'compact'] as const) {
  describe(`THeader, ${protocol}`, () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      ({ server, port } = await startServer(thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: HANDLER, protocol })));
    });
    afterAll(() => server.close());

    it('the thrift library THeader client: replies in kind, pipelined, and its headers reach the handler', async () => {
      const { call, close } = headerClient(port, protocol, { 'x-request-id': 'abc-123', tenant: 'kmux' });
      try {
        const [slow, fast, headers] = await Promise.all([call('sleep', 200), call('echo', Buffer.from('fast')), call('echo', Buffer.from('headers?'))]);
        expect([slow, fast]).toEqual([200, Buffer.from('fast')]);
        expect(JSON.parse(headers.toString())).toEqual({ 'x-request-id': 'abc-123', tenant: 'kmux' });
      } finally {
        close();
      }
    });

    it('client_timeout sets the deadline: the call fails as deadline exceeded, in a THeader reply', async () => {
      const { call, close } = headerClient(port, protocol, { client_timeout: '150' });
      try {
        const late = await call('sleep', 2000).catch((e: unknown) => e);
        expect(late).toBeInstanceOf(TApplicationException);
        expect(late).toMatchObject({ message: expect.stringMatching(/^deadline exceeded: sleep exceeded its 1[0-5][0-9] ms deadline/) });
        expect(await call('sleep', 20)).toBe(20);
      } finally {
        close();
      }
    });

    it('serves plain framed clients on the same port', async () => {
      const { call, close } = stockClient(port, protocol);
      try {
        expect(await call('echo', Buffer.from('headers?'))).toEqual(Buffer.from('{}'));
      } finally {
        close();
      }
    });

    it('python3-thrift THeaderTransport client', async () => {
      const { stdout } = await promisify(execFile)('/usr/bin/python3', [CLIENT_SCRIPT, String(port), protocol], { timeout: 20_000 });
      expect(stdout.trim().split('\n').at(-1)).toBe('ok');
    });
  });
}
