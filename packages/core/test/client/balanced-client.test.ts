// RawClient over several kmux servers (BalancedClient): calls spread and survive a stopped
// server; a host name stands for every address it resolves to, and is resolved again.
import { lookup as systemLookup } from 'node:dns/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { BalancedClient, RawClient, Server, decodeRawReply, encodeRawRequest, rawClientCodec, rawCodec, type HostLookup } from '@kmux/core';
import { HANDLERS, capturingLogger, cleanup, track } from '../helpers.js';

const clients: RawClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await cleanup();
});

function rawClient(options: ConstructorParameters<typeof RawClient>[0]): RawClient {
  const client = new RawClient({ timeoutMs: 10_000, ...options });
  clients.push(client);
  return client;
}

/** A 1-worker raw-codec server on `host`, on `port` (0: any free one). */
async function listenOn(host: string, port = 0): Promise<{ server: Server; port: number }> {
  const server = track(new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 1, transport: 'userspace', logger: capturingLogger() }));
  return { server, port: (await server.listen({ host, port })).port };
}

/** Servers on each of `hosts`, all on one port number (what a name's addresses look like). */
async function listenOnEach(hosts: readonly string[]): Promise<{ port: number; servers: Map<string, Server> }> {
  const first = await listenOn(hosts[0]!);
  const servers = new Map([[hosts[0]!, first.server]]);
  for (const host of hosts.slice(1)) servers.set(host, (await listenOn(host, first.port)).server);
  return { port: first.port, servers };
}

const echoCalls = (server: Server): number => server.stats().methods.echo?.calls ?? 0;

async function echoAll(client: RawClient, count: number): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, async (_, i) => expect((await client.call('echo', `call ${i}`)).toString()).toBe(`call ${i}`)),
  );
}

describe('RawClient over several servers', () => {
  it('spreads calls over every server, and every call still succeeds with one of them stopped', async () => {
    const started = await Promise.all([listenOn('127.0.0.1'), listenOn('127.0.0.1'), listenOn('127.0.0.1')]);
    const client = rawClient({ servers: started.map(({ port }) => ({ port })) });
    await echoAll(client, 90);
    for (const { server } of started) expect(echoCalls(server)).toBeGreaterThan(0);
    expect(client.tls).toBeNull();

    const [gone, ...rest] = started;
    await gone!.server.close();
    for (let round = 0; round < 3; round++) await echoAll(client, 30);
    expect(rest.reduce((sum, { server }) => sum + echoCalls(server), 0)).toBeGreaterThanOrEqual(90);
  });

  it('takes a host name as every address the system resolver gives for it', async () => {
    const addresses = (await systemLookup('localhost', { all: true })).map(({ address }) => address);
    const { port, servers } = await listenOnEach(addresses);
    const client = new BalancedClient({ servers: [{ host: 'localhost', port }], codec: rawClientCodec });
    try {
      for (let id = 1; id <= 40; id++) expect(decodeRawReply(await client.request(id, encodeRawRequest(id, 'echo', Buffer.from('hi')))).toString()).toBe('hi');
      for (const server of servers.values()) expect(echoCalls(server)).toBeGreaterThan(0);
      // Connected by each address, not by the name.
      expect(client.servers().map(({ address }) => address.host).sort()).toEqual(addresses.sort());
    } finally {
      client.close();
    }
  });

  it('spreads calls over all the addresses of a name (A and AAAA)', async () => {
    const { port, servers } = await listenOnEach(['127.0.0.1', '::1']);
    const lookup: HostLookup = async () => [{ address: '127.0.0.1' }, { address: '::1' }];
    const client = rawClient({ servers: [{ host: 'kmux.test', port }], lookup });
    await echoAll(client, 60);
    for (const server of servers.values()) expect(echoCalls(server)).toBeGreaterThan(0);
  });

  it('resolves again periodically: new addresses join, gone ones get no calls and close once idle', async () => {
    const { port, servers } = await listenOnEach(['127.0.0.1', '127.0.0.2']);
    const [first, second] = [servers.get('127.0.0.1')!, servers.get('127.0.0.2')!];
    let answer = ['127.0.0.1'];
    const lookup: HostLookup = async () => answer.map((address) => ({ address }));
    const client = rawClient({ servers: [{ host: 'kmux.test', port }], lookup, resolveEveryMs: 100 });
    await echoAll(client, 10);
    expect(echoCalls(first)).toBe(10);
    expect(echoCalls(second)).toBe(0);

    answer = ['127.0.0.2'];
    await expect.poll(async () => (await echoAll(client, 5), echoCalls(second)), { timeout: 10_000, interval: 150 }).toBeGreaterThan(0);
    const before = echoCalls(first);
    await echoAll(client, 30);
    expect(echoCalls(first)).toBe(before);
    await expect.poll(() => first.stats().connections.open).toBe(0);
  });

  it('resolves again at once when every address of a name fails', async () => {
    const { port, servers } = await listenOnEach(['127.0.0.1', '127.0.0.2']);
    let answer = ['127.0.0.1'];
    const lookup: HostLookup = async () => answer.map((address) => ({ address }));
    const client = rawClient({ servers: [{ host: 'kmux.test', port }], lookup, resolveEveryMs: 60_000 });
    await echoAll(client, 5);

    await servers.get('127.0.0.1')!.close();
    answer = ['127.0.0.2'];
    await echoAll(client, 5);
    expect(echoCalls(servers.get('127.0.0.2')!)).toBe(5);
  });

  it('fails a call with a typed error when a name does not resolve', async () => {
    const lookup: HostLookup = async () => {
      throw new Error('getaddrinfo ENOTFOUND kmux.test');
    };
    const client = rawClient({ servers: [{ host: 'kmux.test', port: 9 }], lookup });
    await expect(client.call('echo', 'x')).rejects.toMatchObject({ kind: 'connection_closed', message: expect.stringContaining('cannot resolve kmux.test') });
  });
});
