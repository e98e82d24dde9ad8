// sockmap never loses a request sent with the FIN: the workers read until they got the frames
// the BPF parser counted (native/frame_tally.h). The KCM twin: test/kernel/kcm-fin.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server, rawCodec } from '@kmux/core';
import { HANDLERS } from '../../packages/core/test/helpers.js';
import { finBursts } from '../kernel/fin-burst.js';

const quiet = { info() {}, warn() {}, error() {} };

describe('sockmap transport: requests sent with the FIN', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 2, transport: 'sockmap', logger: quiet });
    ({ port } = await server.listen());
  });
  afterAll(() => server.close({ timeoutMs: 1000 }));

  it('answers every one of 16 requests written with the FIN, over 2,000 connections', { timeout: 120_000 }, async () => {
    const result = await finBursts(port, 50, 40, 16, true);
    console.log(`### sockmap FIN bursts: ${result.connections} connections, short: ${JSON.stringify(result.short.slice(0, 10))}`);
    expect(result.short).toEqual([]);
    expect(result.wrong).toBe(0);
  });
});
