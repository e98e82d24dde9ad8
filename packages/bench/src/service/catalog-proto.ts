import { fileURLToPath } from 'node:url';

/**
 * The Catalog service's bench methods in protobuf (proto/catalog.proto), served by the
 * kmux protobuf and grpc-js peers with the same handler module; kmux workers load both
 * by absolute path.
 */
export const CATALOG_PROTO = fileURLToPath(new URL('../../proto/catalog.proto', import.meta.url));
export const CATALOG_PROTO_SERVICE = 'kmux.bench.v1.Catalog';
export const CATALOG_PROTO_HANDLER = fileURLToPath(new URL('./catalog-proto-handler.js', import.meta.url));

/** The protobuf forms of the bench's calls, as plain objects (bytes as Buffers). */
export interface BlobMessage {
  data: Buffer;
}
export interface HashRoundsRequest {
  data: Buffer;
  rounds: number;
}
