import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Absolute paths of the example Catalog service's modules (examples/thrift): the code
 * Debian's thrift-compiler 0.17 generated, and the handler. kmux workers load them by path.
 */
export const CATALOG_SERVICE_MODULE = require.resolve('kmux-examples/thrift/gen-nodejs/Catalog.js');
export const CATALOG_HANDLER_MODULE = require.resolve('kmux-examples/thrift/handler.js');
