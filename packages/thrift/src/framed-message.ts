/**
 * A request frame's Thrift message, plain or inside a THeader: where the message is, its
 * header, and the THeader around it if any. Both codec halves read requests through it.
 */
import type { RequestHead } from '@kmux/core';
import { MessageType, readMessageHead, type MessageHead, type ThriftProtocolName } from './message-head.js';
import type { ServiceRoutes } from './service-routes.js';
import { clientTimeoutMs, isTHeader, readTHeader, type THeaderFrame } from './theader.js';

export interface FramedMessage {
  /** The Thrift message alone. */
  readonly message: Buffer;
  readonly head: MessageHead;
  readonly theader: THeaderFrame | null;
}

/** Throws a ProtocolError for a frame that is neither. */
export function readFramedMessage(body: Buffer, protocol: ThriftProtocolName): FramedMessage {
  const theader = isTHeader(body) ? readTHeader(body, protocol) : null;
  const message = theader ? body.subarray(theader.messageStart) : body;
  return { message, head: readMessageHead(message, protocol), theader };
}

/** The RequestHead of a framed message: routed name, the THeader's client timeout and framing. */
export function requestHeadOf({ head, theader }: FramedMessage, routes: ServiceRoutes): RequestHead {
  const request = { id: head.seqid, method: routes.route(head.name).key, oneway: head.type === MessageType.ONEWAY };
  if (!theader) return request;
  const { flags, seqid, protocolId } = theader;
  return { ...request, timeoutMs: clientTimeoutMs(theader.headers), envelope: { flags, seqid, protocolId } };
}
