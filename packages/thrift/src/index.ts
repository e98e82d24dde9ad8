export { thriftCodec, type ThriftCodecOptions, type ThriftServiceModules, type ThriftWorkerOptions } from './server-codec.js';
export { HEALTH_METHOD } from './health-probe.js';
export { thriftClientCodec } from './client-codec.js';
export {
  createThriftClient,
  type ThriftClient,
  type ThriftClientOptions,
  type GeneratedService,
  type PromiseMethod,
} from './client.js';
export { readMessageHead, MessageType, type MessageHead, type ThriftProtocolName } from './message-head.js';
export {
  encodeApplicationException,
  applicationErrorFor,
  ApplicationExceptionType,
  type ApplicationError,
} from './application-exception.js';
export { requestHeaders } from './request-headers.js';
export { CLIENT_TIMEOUT_HEADER } from './theader.js';
