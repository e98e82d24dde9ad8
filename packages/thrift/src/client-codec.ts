import { KmuxError, NOT_RUN_SHUTTING_DOWN, type ClientCodec } from '@kmux/core';
import thrift from 'thrift';
import { applicationErrorFor } from './application-exception.js';
import { readingProtocol } from './library-protocol.js';
import { MessageType, readMessageHead, type ThriftProtocolName } from './message-head.js';

/** What a draining kmux server answers to a request it did not run. */
const NOT_RUN = applicationErrorFor(new KmuxError('shutting_down', NOT_RUN_SHUTTING_DOWN));

/**
 * A kmux ClientCodec for Thrift: a reply's id is the seqid in its message header; a draining
 * server's refusal of a request it did not run is its TApplicationException for shutting_down.
 */
export function thriftClientCodec(protocol: ThriftProtocolName = 'binary'): ClientCodec {
  return {
    replyId: (body) => readMessageHead(body, protocol).seqid,
    notRun(body) {
      if (readMessageHead(body, protocol).type !== MessageType.EXCEPTION) return false;
      const input = readingProtocol(protocol, body);
      input.readMessageBegin();
      // read() sets `type` (the typings say `code`, which only the constructor sets).
      const error = new thrift.Thrift.TApplicationException() as InstanceType<typeof thrift.Thrift.TApplicationException> & { type?: number };
      try {
        error.read(input);
      } catch {
        return false;
      }
      return error.type === NOT_RUN.type && error.message === NOT_RUN.message;
    },
  };
}
