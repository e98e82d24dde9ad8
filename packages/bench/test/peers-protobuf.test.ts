// The bench's protobuf peers — kmux's protobuf codec and @grpc/grpc-js, both serving
// proto/catalog.proto on the Thrift example's handler — called by their own clients, and the
// gRPC load driver against the grpc-js peer.
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createProtobufClient, loadService, RpcError, Status, type UnaryCall } from '@kmux/protobuf';
import { describe, expect, it } from 'vitest';
// The built modules: peers and client processes run as compiled entry modules, as in the bench.
import { CatalogGrpcClient } from '../dist/grpc/catalog-grpc.js';
import { runGrpcLoad, type GrpcLoadSpec } from '../dist/grpc/grpc-load.js';
import type { LoadResult } from '../dist/load/load-generator.js';
import { startPeer, type RunningPeer } from '../dist/peers/spawn-peer.js';
import { CATALOG_PROTO, CATALOG_PROTO_SERVICE, type BlobMessage, type HashRoundsRequest } from '../dist/service/catalog-proto.js';

function expectedDigest(data: Buffer, rounds: number): Buffer {
  let digest = data;
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).update(data).digest();
  return digest;
}

async function expectCleanShutdown(peer: RunningPeer): Promise<void> {
  await peer.close();
  expect(() => process.kill(peer.pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  const socket = connect({ host: '127.0.0.1', port: peer.port });
  await expect(new Promise((resolve, reject) => socket.on('connect', resolve).on('error', reject))).rejects.toMatchObject({
    code: 'ECONNREFUSED',
  });
}

const payloads = Array.from({ length: 50 }, (_, i) => Buffer.from(`payload ${i} `.repeat(1 + i * 37)));
const data = Buffer.from('catalog');

describe('kmux-protobuf peer', () => {
  it('answers Echo and HashRounds to the @kmux/protobuf client, INVALID_ARGUMENT for bad rounds; shuts down cleanly', async () => {
    const peer = await startPeer('kmux-protobuf', { workers: 2, transport: 'userspace' });
    expect(peer.protocol).toBe('kmux-protobuf');
    const service = await loadService(CATALOG_PROTO, CATALOG_PROTO_SERVICE);
    const client = createProtobufClient<{
      echo: UnaryCall<BlobMessage, BlobMessage>;
      hashRounds: UnaryCall<HashRoundsRequest, BlobMessage>;
    }>(service, { port: peer.port });
    try {
      const echoes = await Promise.all(payloads.map((p) => client.echo({ data: p })));
      echoes.forEach((reply, i) => expect(Buffer.from(reply.data)).toEqual(payloads[i]));
      for (const rounds of [1, 400]) expect(Buffer.from((await client.hashRounds({ data, rounds })).data)).toEqual(expectedDigest(data, rounds));
      const refused = await client.hashRounds({ data, rounds: 0 }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(RpcError);
      expect(refused).toMatchObject({ status: Status.INVALID_ARGUMENT });
    } finally {
      client.close();
    }
    expect((await peer.close()) ?? []).toHaveLength(2);
    expect(() => process.kill(peer.pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });
});

type Callback<T> = (error: grpc.ServiceError | null, reply?: T) => void;
/** A generic grpc-js client (methods by name, untyped) with the Catalog's two methods. */
type GrpcCatalog = InstanceType<typeof CatalogGrpcClient> & {
  echo(request: BlobMessage, callback: Callback<BlobMessage>): void;
  hashRounds(request: HashRoundsRequest, callback: Callback<BlobMessage>): void;
};

/**
 * The gRPC load driver against a fresh grpc peer: 3 connections from 2 client processes, 0.3 s of
 * warm-up, 1 s measured; the peer must then shut down cleanly.
 */
async function grpcLoadOnFreshPeer(spec: Pick<GrpcLoadSpec, 'depth' | 'ratePerSecond' | 'calls'>): Promise<LoadResult> {
  const peer = await startPeer('grpc', { workers: 2 });
  try {
    return await runGrpcLoad({
      host: '127.0.0.1',
      port: peer.port,
      connections: 3,
      warmupSeconds: 0.3,
      durationSeconds: 1,
      drainTimeoutMs: 2000,
      processes: 2,
      ...spec,
    });
  } finally {
    await expectCleanShutdown(peer);
  }
}

describe('grpc peer', () => {
  it('answers echo and hashRounds to a grpc-js client, INVALID_ARGUMENT for bad rounds; shuts down cleanly', async () => {
    const peer = await startPeer('grpc', { workers: 2 });
    expect(peer.protocol).toBe('grpc');
    const client = new CatalogGrpcClient(`127.0.0.1:${peer.port}`, grpc.credentials.createInsecure()) as GrpcCatalog;
    const call = <T>(method: 'echo' | 'hashRounds', request: BlobMessage | HashRoundsRequest) =>
      new Promise<T>((resolve, reject) =>
        (client[method] as (r: typeof request, cb: Callback<T>) => void)(request, (error, reply) => (error ? reject(error) : resolve(reply!))),
      );
    try {
      const echoes = await Promise.all(payloads.map((p) => call<BlobMessage>('echo', { data: p })));
      echoes.forEach((reply, i) => expect(reply.data).toEqual(payloads[i]));
      for (const rounds of [1, 400]) expect((await call<BlobMessage>('hashRounds', { data, rounds })).data).toEqual(expectedDigest(data, rounds));
      await expect(call('hashRounds', { data, rounds: 0 })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    } finally {
      client.close();
    }
    await expectCleanShutdown(peer);
  });

  it('the gRPC load driver runs a closed loop over two client processes and reports a LoadResult', async () => {
    const result = await grpcLoadOnFreshPeer({
      depth: 4,
      calls: [
        { method: 'echo', request: { data: Buffer.alloc(64, 7) }, weight: 3 },
        { method: 'hashRounds', request: { data, rounds: 0 }, label: 'bad rounds' },
      ],
    });
    expect(result).toMatchObject({ connections: 3, depth: 4, lost: 0, fatal: null });
    const [echo, bad] = result.perTemplate;
    expect(echo).toMatchObject({ label: 'echo', errors: 0 });
    // Every bad-rounds call fails with its status: errors, as Thrift EXCEPTION replies are.
    expect(bad).toMatchObject({ label: 'bad rounds' });
    expect(bad!.errors).toBe(bad!.requests);
    expect(result.errors).toBe(bad!.errors);
    expect(result.requests).toBe(echo!.requests + bad!.requests);
    // About 3 echoes per bad call, as weighted.
    expect(echo!.requests / bad!.requests).toBeGreaterThan(2);
    expect(echo!.requests / bad!.requests).toBeLessThan(4);
    expect(result.latency.count).toBe(result.requests);
    expect(result.requestsPerSecond).toBeCloseTo(result.requests / result.seconds);
    expect(result.generatorCpuPercent).toBeGreaterThan(0);
    expect(result.maxSendLagUs).toBeUndefined();
  });

  it('the gRPC load driver runs an open loop: the scheduled calls of the window, measured from their intended times', async () => {
    const result = await grpcLoadOnFreshPeer({ depth: 1, ratePerSecond: 300, calls: [{ method: 'echo', request: { data: Buffer.alloc(64, 7) } }] });
    expect(result).toMatchObject({ depth: 0, errors: 0, lost: 0, fatal: null });
    // The schedule catches up whenever the client falls behind, so the count follows the rate, not the server.
    expect(result.requests / result.seconds).toBeGreaterThan(240);
    expect(result.requests / result.seconds).toBeLessThan(360);
    expect(result.maxSendLagUs).toBeGreaterThanOrEqual(0);
  });
});
