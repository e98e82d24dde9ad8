import type { ClientCodec } from '@kmux/core';
import { readMessageHead, type ThriftProtocolName } from './message-head.js';

/** A kmux ClientCodec for Thrift: a reply's id is the seqid in its message header. */
export function thriftClientCodec(protocol: ThriftProtocolName = 'binary'): ClientCodec {
  return { replyId: (body) => readMessageHead(body, protocol).seqid };
}
