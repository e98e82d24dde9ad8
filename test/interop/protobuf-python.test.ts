// Debian's python3-protobuf calling the example Pricing service on a kmux Server, with
// bindings that protoc generates here from the repository's .proto files: the envelope and
// the service, nothing else. The client is written from packages/protobuf/WIRE.md.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { PRICING_BUNDLE, PYTHON, generatePythonBindings, runPythonClient, startPricingServer } from './protobuf-pricing.js';

describe('python3-protobuf client', () => {
  let server: Server;
  let port: number;
  let generated: string;
  beforeAll(async () => {
    generated = await generatePythonBindings();
    ({ server, port } = await startPricingServer(PRICING_BUNDLE));
  });
  afterAll(async () => {
    await server?.close();
    if (generated) await rm(generated, { recursive: true, force: true });
  });

  it('gets results, statuses, pipelined replies and deadlines right from the documented envelope alone', async () => {
    expect(existsSync(PYTHON), `${PYTHON} is missing (needs python3 and python3-protobuf)`).toBe(true);
    const lines = await runPythonClient(port, generated);
    expect(lines.filter((line) => line.startsWith('passed:'))).toHaveLength(10);
    expect(lines.at(-1)).toBe('ok');
  });
});
