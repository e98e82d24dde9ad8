/**
 * Peer child process: the bench's protobuf Catalog service (proto/catalog.proto) on a kmux
 * Server with the protobuf codec, `workers` worker threads each running the handler module
 * that wraps the Thrift example's handler (service/catalog-proto-handler.ts).
 */
import { protobufCodec } from '@kmux/protobuf';
import { CATALOG_PROTO, CATALOG_PROTO_HANDLER, CATALOG_PROTO_SERVICE } from '../service/catalog-proto.js';
import { runKmuxPeer } from './kmux-server-peer.js';

runKmuxPeer(
  protobufCodec({ schema: CATALOG_PROTO, service: CATALOG_PROTO_SERVICE, handler: CATALOG_PROTO_HANDLER }),
  'kmux-protobuf',
);
