/**
 * The module every kmux worker loads for a protobuf service (see protobufCodec): it loads
 * the schema and the handler module itself, since neither can cross threads, then serves.
 */
import type { CreateWorkerCodec } from '@kmux/core';
import { ProtobufDispatcher } from './dispatcher.js';
import { importHandler } from './handler.js';
import { MethodTable } from './method-table.js';
import { loadService } from './schema.js';
import type { ProtobufWorkerOptions } from './server-codec.js';

export const createWorkerCodec: CreateWorkerCodec = async (options) => {
  const { schema, service, handler } = options as ProtobufWorkerOptions;
  const [definition, handlerObject] = await Promise.all([loadService(schema, service), importHandler(handler)]);
  return new ProtobufDispatcher(new MethodTable(definition, handlerObject));
};
