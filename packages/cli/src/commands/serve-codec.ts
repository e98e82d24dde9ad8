/**
 * Picks the codec `kmux serve` runs from its options: a Thrift service (--thrift) or a
 * protobuf service (--proto and --service), exactly one of them, with its handler module.
 */
import { resolve } from 'node:path';
import type { ServerCodec } from '@kmux/core';
import { protobufCodec } from '@kmux/protobuf';
import { thriftCodec, type ThriftProtocolName } from '@kmux/thrift';
import { UsageError } from '../usage.js';

export interface CodecOptions {
  readonly thrift?: string;
  readonly protocol?: string;
  readonly proto?: string;
  readonly service?: string;
  readonly handler?: string;
}

export interface ChosenCodec {
  readonly codec: ServerCodec;
  /** What the ready line says is served, e.g. "binary" or "protobuf kmux.example.v1.Pricing". */
  readonly description: string;
}

const PROTOCOLS: readonly ThriftProtocolName[] = ['binary', 'compact'];

export function chooseCodec(options: CodecOptions, help: string): ChosenCodec {
  if (Boolean(options.thrift) === Boolean(options.proto)) {
    throw new UsageError(`serve needs exactly one of --thrift or --proto, and --handler\n\n${help}`);
  }
  if (!options.handler) throw new UsageError(`--handler is required\n\n${help}`);
  const handler = resolve(options.handler);

  if (options.thrift) {
    if (options.service !== undefined) throw new UsageError('--service goes with --proto');
    const protocol = (options.protocol ?? 'binary') as ThriftProtocolName;
    if (!PROTOCOLS.includes(protocol)) throw new UsageError(`--protocol must be binary or compact, got '${protocol}'`);
    return { codec: thriftCodec({ service: resolve(options.thrift), handler, protocol }), description: protocol };
  }

  if (options.protocol !== undefined) throw new UsageError('--protocol goes with --thrift; protobuf services have one wire format');
  if (!options.service) throw new UsageError('--proto needs --service, the fully qualified name of the service to serve');
  return {
    codec: protobufCodec({ schema: resolve(options.proto!), service: options.service, handler }),
    description: `protobuf ${options.service}`,
  };
}
