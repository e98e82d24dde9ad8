// Debian's python3-protobuf calling the example Pricing service on a kmux Server, with
// bindings that protoc generates here from the repository's .proto files: the envelope and
// the service, nothing else. The client is written from packages/protobuf/WIRE.md.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { ENVELOPE_PROTO } from '@kmux/protobuf';
import { PRICING_BUNDLE, PRICING_DIR, PRICING_PROTO, startPricingServer } from './protobuf-pricing.js';

// Explicitly the system interpreter: python3-protobuf is a Debian package, and `python3` on
// PATH may be a pyenv shim without it. scripts/system-deps.mjs installs it and protoc.
const PYTHON = '/usr/bin/python3';
const CLIENT_SCRIPT = fileURLToPath(new URL('./protobuf-pricing-client.py', import.meta.url));
/** The include root of envelope.proto, so that protoc names its module kmux/envelope/v1. */
const ENVELOPE_INCLUDE = join(dirname(ENVELOPE_PROTO), '../../..');
const run = promisify(execFile);

describe('python3-protobuf client', () => {
  let server: Server;
  let port: number;
  let generated: string;
  beforeAll(async () => {
    generated = await mkdtemp(join(tmpdir(), 'kmux-protobuf-py-'));
    await run('protoc', [
      `--python_out=${generated}`,
      `-I${ENVELOPE_INCLUDE}`,
      `-I${PRICING_DIR}`,
      ENVELOPE_PROTO,
      PRICING_PROTO,
    ]);
    ({ server, port } = await startPricingServer(PRICING_BUNDLE));
  });
  afterAll(async () => {
    await server?.close();
    if (generated) await rm(generated, { recursive: true, force: true });
  });

  it('gets results, statuses, pipelined replies and deadlines right from the documented envelope alone', async () => {
    expect(existsSync(PYTHON), `${PYTHON} is missing (needs python3 and python3-protobuf)`).toBe(true);
    // Asynchronous on purpose: this process is also the server.
    const { stdout } = await run(PYTHON, [CLIENT_SCRIPT, String(port), generated], { timeout: 20_000 });
    const lines = stdout.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('passed:'))).toHaveLength(10);
    expect(lines.at(-1)).toBe('ok');
  });
});
