// Every Thrift peer of the bench, started as the bench starts it (its own process), called
// by the stock Apache Thrift Node client over framed + binary, then shut down.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import thrift from 'thrift';
import { describe, expect, it } from 'vitest';
// The built peers: each runs as its own compiled entry module, as in the bench.
import { peerUnavailable, startPeer, type PeerName, type RunningPeer } from '../dist/peers/spawn-peer.js';
import { CATALOG_SERVICE_MODULE } from '../dist/service/catalog-modules.js';
import { catalogService } from '../dist/service/catalog.js';

const types = createRequire(CATALOG_SERVICE_MODULE)('./catalog_types') as Record<string, new (fields: object) => object>;
const { TApplicationException, TApplicationExceptionType } = thrift.Thrift;

function expectedDigest(data: Buffer, rounds: number): Buffer {
  let digest = data;
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).update(data).digest();
  return digest;
}

/** The stock client on one framed connection, its callback methods as promises. */
function stockClient(port: number) {
  const connection = thrift.createConnection('127.0.0.1', port, { transport: thrift.TFramedTransport, protocol: thrift.TBinaryProtocol });
  const client = thrift.createClient(catalogService.Client as never, connection) as Record<string, (...args: unknown[]) => void>;
  const call = (method: string, ...args: unknown[]): Promise<any> =>
    new Promise((resolve, reject) => client[method]!(...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
  const closed = new Promise<void>((resolve) => connection.once('close', () => resolve()));
  return {
    call,
    close: () => (connection.end(), closed),
  };
}

/** Stops the peer and checks that its serving process is gone and its port closed; returns its per-worker counts. */
async function expectCleanShutdown(peer: RunningPeer): Promise<number[] | null> {
  const workerRequests = await peer.close();
  expect(() => process.kill(peer.pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  const socket = connect({ host: '127.0.0.1', port: peer.port });
  await expect(new Promise((resolve, reject) => socket.on('connect', resolve).on('error', reject))).rejects.toMatchObject({
    code: 'ECONNREFUSED',
  });
  return workerRequests;
}

const HANDLER_PEERS: PeerName[] = ['stock', 'piscina', 'kmux-userspace', 'kmux-sockmap'];

describe.each(HANDLER_PEERS)('thrift peer %s', (name) => {
  it('answers echo, hashRounds, blockFor, lookup, oneway and declared exceptions; shuts down cleanly', async (context) => {
    const unavailable = await peerUnavailable(name);
    if (unavailable) return context.skip(unavailable);
    const peer = await startPeer(name, { workers: 2 });
    expect(peer.protocol).toBe('thrift-binary-framed');
    expect(peer.pid).toBeGreaterThan(0);
    const client = stockClient(peer.port);
    try {
      const payloads = Array.from({ length: 50 }, (_, i) => Buffer.from(`payload ${i} `.repeat(1 + i * 37)));
      const echoes = await Promise.all(payloads.map((p) => client.call('echo', p)));
      echoes.forEach((reply, i) => expect(Buffer.from(reply)).toEqual(payloads[i]));

      const data = Buffer.from('catalog');
      for (const rounds of [1, 400]) expect(Buffer.from(await client.call('hashRounds', data, rounds))).toEqual(expectedDigest(data, rounds));
      await expect(client.call('hashRounds', data, 0)).rejects.toBeInstanceOf(types.InvalidArgument);
      const blockStart = performance.now();
      expect(await client.call('blockFor', 3000)).toBe(3000);
      expect(performance.now() - blockStart).toBeGreaterThanOrEqual(3);

      await client.call('recordView', 'kb-001'); // oneway: resolves once sent
      const lookup = new types.Query!({ sku: 'ms-002' });
      expect(await client.call('lookup', lookup)).toMatchObject({ sku: 'ms-002', title: 'Wireless mouse', priceCents: 2900 });
      await expect(client.call('lookup', new types.Query!({ sku: 'nope' }))).rejects.toBeInstanceOf(types.ItemNotFound);
    } finally {
      await client.close();
    }
    const workerRequests = await expectCleanShutdown(peer);
    // The pool really ran every call: 50 echoes, 3 hashRounds, a blockFor, a recordView, 2 lookups.
    if (name === 'piscina') expect(workerRequests!.reduce((a, b) => a + b, 0)).toBe(57);
    if (name.startsWith('kmux')) expect(workerRequests).toHaveLength(2);
  });
});

describe('thrift peer c-echo (the C epoll server)', () => {
  it('answers echo as valid Thrift replies and every other call with an exception; shuts down cleanly', async () => {
    expect(await peerUnavailable('c-echo')).toBeNull();
    const peer = await startPeer('c-echo', { workers: 2 });
    expect(peer.protocol).toBe('thrift-binary-framed');
    // The pid is the C server's own, not its Node wrapper's: the bench measures that process.
    expect(readFileSync(`/proc/${peer.pid}/comm`, 'utf8').trim()).toBe('thrift-echo-ser');
    const clients = [stockClient(peer.port), stockClient(peer.port), stockClient(peer.port)];
    try {
      // Sizes past the server's 64 KiB reads, so frames arrive split; several connections spread over both threads.
      const payloads = [0, 1, 64, 16_384, 70_000, 300_000].flatMap((size) => [Buffer.alloc(size, size % 251), Buffer.from(`x${size}`)]);
      await Promise.all(
        clients.map(async (client) => {
          const replies = await Promise.all(payloads.map((p) => client.call('echo', p)));
          replies.forEach((reply, i) => expect(Buffer.from(reply)).toEqual(payloads[i]));
        }),
      );
      const [client] = clients;
      const refused = await client!.call('hashRounds', Buffer.from('x'), 1).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(TApplicationException);
      expect(refused).toMatchObject({ type: TApplicationExceptionType.UNKNOWN_METHOD });
      // A oneway call gets no reply and leaves the connection usable.
      await client!.call('recordView', 'kb-001');
      expect(Buffer.from(await client!.call('echo', Buffer.from('after')))).toEqual(Buffer.from('after'));
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    await expectCleanShutdown(peer);
  });
});
