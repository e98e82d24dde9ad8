// Debian's python3-thrift (the Apache Thrift Python library) calling the example Catalog
// service on a kmux Server, through the committed gen-py bindings.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { startCatalogServer } from './catalog.js';

// Explicitly the system interpreter: python3-thrift is a Debian package, and `python3` on
// PATH may be a pyenv shim without it. scripts/system-deps.mjs installs it.
const PYTHON = '/usr/bin/python3';
const CLIENT_SCRIPT = fileURLToPath(new URL('./catalog_client.py', import.meta.url));

for (const [protocol, transport] of [['binary', 'auto'], ['compact', 'auto'], ['binary', 'native'], ['compact', 'native']] as const) {
  describe(`python3-thrift ${protocol} client, transport ${transport}`, () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      ({ server, port } = await startCatalogServer(protocol, { transport }));
    });
    afterAll(() => server.close());

    // buffered: TBufferedTransport, the Python library's default, sends messages unframed. Only
    // user space splits those; native refuses them, as the kernel transports do (thrift-sockmap.test.ts).
    for (const framing of transport === 'native' ? (['framed'] as const) : (['framed', 'buffered'] as const)) {
      it(`gets every result, declared exception and oneway call right (${framing})`, async () => {
        expect(existsSync(PYTHON), `${PYTHON} is missing (needs python3 and python3-thrift)`).toBe(true);
        // Asynchronous on purpose: this process is also the server.
        const { stdout } = await promisify(execFile)(PYTHON, [CLIENT_SCRIPT, String(port), protocol, framing], { timeout: 20_000 });
        const lines = stdout.trim().split('\n');
        expect(lines.filter((line) => line.startsWith('passed:'))).toHaveLength(7);
        expect(lines.at(-1)).toBe('ok');
      });
    }
  });
}
