/**
 * The module every kmux worker loads for a protobuf service (see protobufCodec): it loads
 * the schema and the handler module itself, since neither can cross threads, checks the
 * handler against the service's methods, runs its init(), then serves.
 */
import { fileURLToPath } from 'node:url';
import { checkHandler, initHandler, provideModules, type CreateWorkerCodec } from '@kmux/core/worker';
import { ProtobufDispatcher } from './dispatcher.js';
import { handlerName, importHandler } from './handler.js';
import { HEALTH_CHECK, HEALTH_WATCH } from './health.js';
import { MethodTable } from './method-table.js';
import { loadService } from './schema.js';
import type { ProtobufWorkerOptions } from './server-codec.js';

export const createWorkerCodec: CreateWorkerCodec = async (options) => {
  const { schema, service, handler } = options as ProtobufWorkerOptions;
  // A handler imports RpcError and Status from '@kmux/protobuf': the user's own copy if they have one, else this one.
  provideModules({ '@kmux/protobuf': fileURLToPath(new URL('./index.js', import.meta.url)) });
  const [definition, handlerObject] = await Promise.all([loadService(schema, service), importHandler(handler)]);
  const declared = definition.methodsArray.map((method) => method.name);
  const handlerNames = declared.map(handlerName);
  const warnings = checkHandler(handler, handlerObject, handlerNames);
  await initHandler(handler, handlerObject, handlerNames);
  // The gRPC health methods are answered for every service, so they are counted as declared.
  const methods = [...declared, HEALTH_CHECK, HEALTH_WATCH];
  return new ProtobufDispatcher(new MethodTable(definition, handlerObject), methods, warnings);
};
