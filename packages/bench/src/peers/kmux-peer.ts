/**
 * Peer child process: the example Catalog service on a kmux Server — the main thread
 * splits frames and spreads them over `workers` worker threads, each running the handler.
 */
import { thriftCodec } from '@kmux/thrift';
import { CATALOG_HANDLER_MODULE, CATALOG_SERVICE_MODULE } from '../service/catalog-modules.js';
import { runKmuxPeer } from './kmux-server-peer.js';

runKmuxPeer(thriftCodec({ service: CATALOG_SERVICE_MODULE, handler: CATALOG_HANDLER_MODULE, protocol: 'binary' }), 'thrift-binary-framed');
