/**
 * The protobuf Catalog service (proto/catalog.proto) on the Thrift example's own handler,
 * so every peer, whatever its protocol, runs the same handler code. kmux's protobuf
 * workers load this module by path; the grpc-js peer calls it directly. Failures are
 * RpcErrors, whose status numbers are gRPC's.
 */
import { createRequire } from 'node:module';
import { RpcError, Status } from '@kmux/protobuf';
import { CATALOG_HANDLER_MODULE } from './catalog-modules.js';
import type { BlobMessage, HashRoundsRequest } from './catalog-proto.js';

type ThriftHashRounds = (data: Buffer, rounds: number, callback: (error: unknown, digest?: Buffer) => void) => void;

const thriftHandler = createRequire(import.meta.url)(CATALOG_HANDLER_MODULE) as {
  echo(data: Buffer): Buffer;
  hashRounds: ThriftHashRounds;
};

export function echo({ data }: BlobMessage): BlobMessage {
  return { data: thriftHandler.echo(data) };
}

export function hashRounds({ data, rounds }: HashRoundsRequest): Promise<BlobMessage> {
  return new Promise((resolve, reject) =>
    thriftHandler.hashRounds(data, rounds, (error, digest) => {
      // The Thrift handler's one declared failure is InvalidArgument.
      if (error) reject(new RpcError(Status.INVALID_ARGUMENT, (error as { message?: string }).message ?? String(error)));
      else resolve({ data: digest! });
    }),
  );
}
