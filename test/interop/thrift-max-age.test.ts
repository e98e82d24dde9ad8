// maxConnectionAgeMs with the stock Thrift Node client on the transports this host runs (KCM: test/kernel/kcm-max-age.test.ts).
import { describe, expect, it } from 'vitest';
import { startCatalogServer } from './catalog.js';
import { AGE_MS, describeMaxAge, sleep, watchedStockClient } from './max-age.js';

for (const transport of ['userspace', 'sockmap', 'native'] as const) describeMaxAge(transport);

describe('maxConnectionAgeMs off (the default)', () => {
  it('a connection outlives many idle ticks of a short age', async () => {
    const { server, port } = await startCatalogServer('binary');
    const client = watchedStockClient(port, 'framed');
    try {
      expect(await client.call('echo', Buffer.from('a'))).toEqual(Buffer.from('a'));
      await sleep(AGE_MS * 2);
      expect(await client.call('echo', Buffer.from('b'))).toEqual(Buffer.from('b'));
      expect(client.events).toEqual([]);
      expect(server.stats().connections.aged).toBe(0);
    } finally {
      client.end();
      await server.close();
    }
  });
});
