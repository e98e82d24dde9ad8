import { NOT_RUN_SHUTTING_DOWN, type ClientCodec } from '@kmux/core';
import { decodeResponseEnvelope } from './envelope.js';
import { statusOfKind } from './status.js';

const NOT_RUN_STATUS = statusOfKind('shutting_down');

/**
 * A kmux ClientCodec for the protobuf envelope: a reply's id is its Response id; a draining
 * server's refusal of a request it did not run is UNAVAILABLE with NOT_RUN_SHUTTING_DOWN.
 */
export const protobufClientCodec: ClientCodec = {
  replyId: (body) => decodeResponseEnvelope(body).id,
  notRun(body) {
    const { status, message } = decodeResponseEnvelope(body);
    return status === NOT_RUN_STATUS && message === NOT_RUN_SHUTTING_DOWN;
  },
};
