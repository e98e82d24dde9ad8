// kmux's Thrift client over several kmux servers (core BalancedClient): the power of two
// choices on requests outstanding, a failing server ejected and probed back.
import { afterEach, describe, expect, it } from 'vitest';
import { Server } from '@kmux/core';
import { createThriftClient, thriftCodec } from '@kmux/thrift';
import { Catalog, EXAMPLE_DIR, startCatalogServer } from './catalog.js';

type CatalogModule = typeof import('../../examples/thrift/gen-nodejs/Catalog.js');

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(count: number): Promise<{ server: Server; port: number }[]> {
  const started = await Promise.all(Array.from({ length: count }, () => startCatalogServer('binary', { workers: 1 })));
  servers.push(...started.map(({ server }) => server));
  return started;
}

const echoCalls = (server: Server): number => server.stats().methods.echo?.calls ?? 0;

describe('kmux Thrift client over several servers', () => {
  it('sends each call to the server with fewer calls outstanding (two servers: always the idle one)', async () => {
    const [a, b] = await start(2);
    const client = createThriftClient(Catalog as CatalogModule, { servers: [{ port: a!.port }, { port: b!.port }] });
    try {
      const slow = client.sleep(1500);
      await expect.poll(() => a!.server.stats().requests.inFlight + b!.server.stats().requests.inFlight).toBe(1);
      const busy = a!.server.stats().requests.inFlight === 1 ? a! : b!;
      const idle = busy === a ? b! : a!;
      for (let i = 0; i < 10; i++) expect(await client.echo(Buffer.from(`call ${i}`))).toEqual(Buffer.from(`call ${i}`));
      expect(echoCalls(idle.server)).toBe(10);
      expect(echoCalls(busy.server)).toBe(0);
      expect(await slow).toBe(1500);
    } finally {
      client.close();
    }
  });

  it('spreads calls over every server, ejects one that stops, and probes it back once it listens again', async () => {
    const started = await start(3);
    const client = createThriftClient(Catalog as CatalogModule, { servers: started.map(({ port }) => ({ port })) });
    const calls = async (n: number): Promise<void> => {
      await Promise.all(
        Array.from({ length: n }, async (_, i) => expect(await client.echo(Buffer.from(`call ${i}`))).toEqual(Buffer.from(`call ${i}`))),
      );
    };
    try {
      await calls(90);
      for (const { server } of started) expect(echoCalls(server)).toBeGreaterThan(0);

      // Stopped: its connection ends after the drain, its port refuses: every call still succeeds elsewhere.
      const [gone] = started.splice(0, 1);
      await gone!.server.close();
      for (let round = 0; round < 3; round++) await calls(30);
      expect(started.reduce((sum, { server }) => sum + echoCalls(server), 0)).toBeGreaterThanOrEqual(90);

      // Back on the same port: once its ejection (1 s, doubled per failure) passes, a call probes it and it serves again.
      const revived = new Server({
        codec: thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: `${EXAMPLE_DIR}handler.js` }),
        workers: 1,
        logger: { info: () => undefined, warn: console.warn, error: console.error },
      });
      servers.push(revived);
      await revived.listen({ port: gone!.port });
      await expect.poll(async () => (await calls(10), echoCalls(revived)), { timeout: 20_000, interval: 200 }).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });
});
