import type { ClientCodec } from '@kmux/core';
import { decodeResponseEnvelope } from './envelope.js';

/** A kmux ClientCodec for the protobuf envelope: a reply's id is its Response id. */
export const protobufClientCodec: ClientCodec = {
  replyId: (body) => decodeResponseEnvelope(body).id,
};
