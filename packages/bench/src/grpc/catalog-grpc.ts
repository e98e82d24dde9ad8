/**
 * The bench's protobuf Catalog service (proto/catalog.proto) as @grpc/grpc-js sees it,
 * loaded with @grpc/proto-loader (protobufjs underneath): bytes as Buffers, absent fields
 * as their defaults, like the protobufjs messages kmux's protobuf codec hands its handlers.
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { CATALOG_PROTO, CATALOG_PROTO_SERVICE } from '../service/catalog-proto.js';

const definition = loadSync(CATALOG_PROTO, { defaults: true });

export const catalogGrpcService = definition[CATALOG_PROTO_SERVICE] as grpc.ServiceDefinition;

/** A client constructor for the service; one instance per channel (connection). */
export const CatalogGrpcClient = grpc.makeGenericClientConstructor(catalogGrpcService, 'Catalog');

/** The service's methods by their lowerCamelCase names, as handlers and clients call them. */
export const GRPC_METHODS = ['echo', 'hashRounds'] as const;
export type GrpcMethod = (typeof GRPC_METHODS)[number];
