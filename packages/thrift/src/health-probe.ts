/**
 * A health check that a load balancer can send without the service's IDL: a CALL of
 * HEALTH_METHOD with no arguments, answered by whichever worker takes it with an empty
 * REPLY (a void result). While the server drains, it gets a TApplicationException
 * ("shutting down") like any call, so a balancer stops sending new work. The exact bytes
 * are in packages/thrift/README.md.
 */
import type { WorkerResult } from '@kmux/core';
import { writingProtocol } from './library-protocol.js';
import { MessageType, type ThriftProtocolName } from './message-head.js';

export const HEALTH_METHOD = '__kmux_health__';

export function healthReply(protocol: ThriftProtocolName, seqid: number): WorkerResult {
  let reply: Buffer | null = null;
  const out = writingProtocol(protocol, (message) => (reply = message));
  out.writeMessageBegin(HEALTH_METHOD, MessageType.REPLY, seqid);
  out.writeStructBegin('');
  out.writeFieldStop();
  out.writeStructEnd();
  out.writeMessageEnd();
  out.flush();
  return { reply: reply!, failed: false };
}
