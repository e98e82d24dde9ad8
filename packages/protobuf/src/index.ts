export { protobufCodec, type ProtobufCodecOptions, type ProtobufWorkerOptions } from './server-codec.js';
export { protobufClientCodec } from './client-codec.js';
export {
  createProtobufClient,
  type ProtobufClient,
  type ProtobufClientOptions,
  type CallOptions,
  type UnaryCall,
  type UntypedMethods,
  type DecodedMessage,
  type ClientControl,
} from './client.js';
export { loadService } from './schema.js';
export { RpcError } from './rpc-error.js';
export { Status, STATUS_OF_KIND, statusName, statusOfKind, isStatusCode, type StatusCode, type StatusName } from './status.js';
export { handlerName, type HandlerContext, type MethodHandler } from './handler.js';
export {
  ENVELOPE_PROTO,
  readRequestEnvelope,
  encodeRequestEnvelope,
  encodeResponseEnvelope,
  decodeResponseEnvelope,
  type RequestEnvelope,
  type Metadata,
  type RequestEnvelopeHead,
  type ResponseEnvelope,
} from './envelope.js';
export { HEALTH_CHECK, HEALTH_WATCH, ServingStatus } from './health.js';
