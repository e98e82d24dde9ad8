import { createRequire } from 'node:module';
import type { GeneratedClientClass } from '../load/request-template.js';
import { CATALOG_HANDLER_MODULE, CATALOG_SERVICE_MODULE } from './catalog-modules.js';
import { installQShim } from './thrift-q-shim.js';

/**
 * The example Catalog service loaded into this thread: its generated code and handler.
 * Both are CommonJS without type declarations, so they are loaded with require and given
 * just the types the bench uses.
 */
export interface GeneratedService {
  readonly Client: GeneratedClientClass;
  readonly Processor: new (handler: object) => unknown;
}

const require = createRequire(import.meta.url);

// The generated module reads thrift.Q once, as it loads: the shim must come first.
installQShim(createRequire(CATALOG_SERVICE_MODULE)('thrift') as Record<string, unknown>);

export const catalogService = require(CATALOG_SERVICE_MODULE) as GeneratedService;
export const catalogHandler = require(CATALOG_HANDLER_MODULE) as Record<string, (...args: never[]) => unknown>;
