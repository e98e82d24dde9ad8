// maxConnectionAgeMs with the stock Apache Thrift Node client and kmux's Thrift client: past its
// age a connection refuses new requests unrun, answers those it took, then closes with a FIN
// after the last reply; the kmux client sends the refused ones again on a new connection. User space,
// sockmap and native on the host (thrift-max-age.test.ts), KCM in the VM (test/kernel/kcm-max-age.test.ts).
import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from '@kmux/core';
import { createThriftClient } from '@kmux/thrift';
import { startCatalogServer, thrift, Catalog } from './catalog.js';

/** The age on this host; the VM runs node 10-20x slower and passes a longer one. */
export const AGE_MS = 300;

/** A stock client whose socket's end is watched: 'end' (the server's FIN), 'close' with or without an error. */
export function watchedStockClient(port: number, transport: 'framed' | 'buffered') {
  const connection = thrift.createConnection('127.0.0.1', port, {
    transport: transport === 'framed' ? thrift.TFramedTransport : thrift.TBufferedTransport,
    protocol: thrift.TBinaryProtocol,
  });
  const client = thrift.createClient(Catalog, connection);
  const events: string[] = [];
  connection.on('error', (error: Error) => events.push(`error ${error.message}`));
  const socket = connection.connection as import('node:net').Socket;
  socket.on('end', () => events.push('end'));
  const closed = new Promise<boolean>((resolve) => socket.on('close', resolve));
  const call = (method: string, ...args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => client[method](...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
  return { call, events, closed, end: () => connection.end() };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function describeMaxAge(transport: 'userspace' | 'sockmap' | 'native' | 'kcm', label: string = transport, ageMs = AGE_MS): void {
  describe(`${label}: maxConnectionAgeMs over ${transport}`, () => {
    let server: Server | null = null;
    afterEach(async () => {
      await server?.close();
      server = null;
    });

    for (const framing of transport === 'userspace' ? (['framed', 'buffered'] as const) : (['framed'] as const)) {
      it(`stock ${framing} client: the call in flight at the age is answered, a later one refused, then a clean close (FIN, no error), counted`, async () => {
        let port: number;
        ({ server, port } = await startCatalogServer('binary', { transport, maxConnectionAgeMs: ageMs }));
        const client = watchedStockClient(port, framing);
        try {
          expect(await client.call('echo', Buffer.from('before'))).toEqual(Buffer.from('before'));
          // Runs across the age (at most 1.1 × ageMs after the connect): a graceful end must answer it.
          const slowMs = ageMs * 5;
          const slow = client.call('sleep', slowMs);
          // The age timer was set before this one, for an earlier time: it has fired by now.
          await sleep(ageMs * 1.1 + 200);
          const late = client.call('echo', Buffer.from('after the age')).catch((error: unknown) => error);
          expect(await slow).toBe(slowMs);
          // Not run, and the client is told so (user space decides at once; a kernel transport's
          // worker learns of the age by message, and may have taken one more request first).
          const refused = { name: 'TApplicationException', message: 'shutting down: server is shutting down' };
          if (transport === 'userspace') expect(await late).toMatchObject(refused);
          else expect([refused.message, 'after the age']).toContain(String((await late as Error).message ?? (await late)));
          expect(await client.closed).toBe(false); // closed without a transmission error
          expect(client.events).toEqual(['end']); // the server's FIN, after the reply
          await expect.poll(() => server!.stats().connections).toMatchObject({ aged: 1, open: 0 });
          expect(server!.metrics()).toMatch(/^kmux_connections_aged_total 1$/m);
          expect(server!.stats().connectionErrors).toEqual({});
        } finally {
          client.end();
        }
      });
    }

    it('kmux client: calls across several ages all succeed, each run once (refused ones sent again on a new connection)', async () => {
      let port: number;
      ({ server, port } = await startCatalogServer('binary', { transport, maxConnectionAgeMs: ageMs }));
      const client = createThriftClient(Catalog as typeof import('../../examples/thrift/gen-nodejs/Catalog.js'), { port });
      let answered = 0;
      try {
        // Eight callers back to back on one client, until the server has ended three of its
        // connections: busy enough that one is refused before the server finds the connection quiet.
        const caller = async (id: number): Promise<void> => {
          for (let n = 0; server!.stats().connections.aged < 3; n++) {
            const payload = Buffer.from(`caller ${id} call ${n}`);
            expect(await client.echo(payload)).toEqual(payload);
            answered++;
          }
        };
        await Promise.all(Array.from({ length: 8 }, (_, id) => caller(id)));
      } finally {
        client.close();
      }
      const { requests, connections } = server!.stats();
      // Each call ran exactly once: what the server answered ok is what the client got.
      expect(requests.outcomes.ok).toBe(answered);
      expect(connections.accepted).toBeGreaterThanOrEqual(4);
      expect(server!.stats().connectionErrors).toEqual({});
    });

    it('an idle connection ends at its age, and a new one is served', async () => {
      let port: number;
      ({ server, port } = await startCatalogServer('binary', { transport, maxConnectionAgeMs: ageMs }));
      const first = watchedStockClient(port, 'framed');
      expect(await first.call('echo', Buffer.from('one'))).toEqual(Buffer.from('one'));
      expect(await first.closed).toBe(false);
      expect(first.events).toEqual(['end']);
      const second = watchedStockClient(port, 'framed');
      try {
        expect(await second.call('echo', Buffer.from('two'))).toEqual(Buffer.from('two'));
      } finally {
        second.end();
      }
      await expect.poll(() => server!.stats().connections.aged).toBeGreaterThanOrEqual(1);
      expect(server!.stats().connectionErrors).toEqual({});
    });
  });
}
