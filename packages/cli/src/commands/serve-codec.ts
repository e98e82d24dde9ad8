/**
 * Picks the codec `kmux serve` runs from its options: Thrift services (--thrift/--handler
 * pairs, or a --config file naming several), or a protobuf service (--proto and --service),
 * with its handler modules.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import type { ServerCodec } from '@kmux/core';
import { protobufCodec } from '@kmux/protobuf';
import { thriftCodec, type ThriftProtocolName, type ThriftServiceModules } from '@kmux/thrift';
import { UsageError } from '../usage.js';

export interface CodecOptions {
  readonly thrift?: readonly string[];
  readonly protocol?: string;
  readonly proto?: string;
  readonly service?: string;
  readonly handler?: readonly string[];
  readonly 'default-service'?: string;
  readonly config?: string;
}

export interface ChosenCodec {
  readonly codec: ServerCodec;
  /** What the ready line says is served, e.g. "binary", "binary Catalog, Inventory" or "protobuf kmux.example.v1.Pricing". */
  readonly description: string;
  /** Per-method deadlines from a config file ("Service:method" names when multiplexed). */
  readonly methodDeadlines?: Readonly<Record<string, number>>;
}

/** A --config file: Thrift services on one port, paths relative to the file. */
interface ThriftConfig {
  readonly protocol?: string;
  readonly services: Readonly<Record<string, { readonly thrift: string; readonly handler: string }>>;
  readonly defaultService?: string;
  readonly methodDeadlines?: Readonly<Record<string, number>>;
}

const PROTOCOLS: readonly ThriftProtocolName[] = ['binary', 'compact'];

export function chooseCodec(options: CodecOptions, help: string): ChosenCodec {
  if (options.config !== undefined) return fromConfig(options);
  const thrift = options.thrift ?? [];
  const handlers = (options.handler ?? []).map((path) => resolve(path));
  if ((thrift.length > 0) === Boolean(options.proto)) {
    throw new UsageError(`serve needs exactly one of --thrift or --proto, and --handler (or a --config file)\n\n${help}`);
  }
  if (handlers.length === 0) throw new UsageError(`--handler is required\n\n${help}`);

  if (thrift.length > 0) {
    if (options.service !== undefined) throw new UsageError('--service goes with --proto');
    if (handlers.length !== thrift.length) {
      throw new UsageError(`each --thrift needs its --handler, in the same order (got ${thrift.length} --thrift, ${handlers.length} --handler)`);
    }
    const protocol = thriftProtocol(options.protocol);
    const defaultService = options['default-service'];
    if (thrift.length === 1 && defaultService === undefined) {
      return { codec: thriftCodec({ service: resolve(thrift[0]!), handler: handlers[0]!, protocol }), description: protocol };
    }
    // Several services: each is named as its generated module is (gen-nodejs/Catalog.js: Catalog).
    const services: Record<string, ThriftServiceModules> = {};
    thrift.forEach((path, i) => {
      const name = basename(path, extname(path));
      if (services[name]) throw new UsageError(`--thrift names service ${name} twice`);
      services[name] = { service: resolve(path), handler: handlers[i]! };
    });
    return multiplexed(services, defaultService, protocol);
  }

  if (options.protocol !== undefined) throw new UsageError('--protocol goes with --thrift; protobuf services have one wire format');
  if (options['default-service'] !== undefined) throw new UsageError('--default-service goes with several --thrift services');
  if (!options.service) throw new UsageError('--proto needs --service, the fully qualified name of the service to serve');
  if (handlers.length > 1) throw new UsageError('--proto serves one service: give one --handler');
  return {
    codec: protobufCodec({ schema: resolve(options.proto!), service: options.service, handler: handlers[0]! }),
    description: `protobuf ${options.service}`,
  };
}

function fromConfig(options: CodecOptions): ChosenCodec {
  for (const flag of ['thrift', 'handler', 'proto', 'service', 'protocol', 'default-service'] as const) {
    if (options[flag] !== undefined) throw new UsageError(`--config names the services; drop --${flag}`);
  }
  const path = resolve(options.config!);
  let config: ThriftConfig;
  try {
    config = JSON.parse(readFileSync(path, 'utf8')) as ThriftConfig;
  } catch (error) {
    throw new UsageError(`--config ${path}: ${(error as Error).message}`);
  }
  if (typeof config.services !== 'object' || config.services === null || Object.keys(config.services).length === 0) {
    throw new UsageError(`--config ${path}: "services" must name at least one service: { "Name": { "thrift": FILE, "handler": FILE } }`);
  }
  const base = dirname(path);
  const services: Record<string, ThriftServiceModules> = {};
  for (const [name, entry] of Object.entries(config.services)) {
    if (typeof entry?.thrift !== 'string' || typeof entry.handler !== 'string') {
      throw new UsageError(`--config ${path}: service ${name} needs "thrift" and "handler" paths`);
    }
    services[name] = { service: resolve(base, entry.thrift), handler: resolve(base, entry.handler) };
  }
  const chosen = multiplexed(services, config.defaultService, thriftProtocol(config.protocol));
  return config.methodDeadlines ? { ...chosen, methodDeadlines: config.methodDeadlines } : chosen;
}

function multiplexed(services: Record<string, ThriftServiceModules>, defaultService: string | undefined, protocol: ThriftProtocolName): ChosenCodec {
  let codec: ServerCodec;
  try {
    codec = thriftCodec({ services, protocol, ...(defaultService !== undefined && { defaultService }) });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const names = Object.keys(services).map((name) => (name === defaultService ? `${name} (default)` : name));
  return { codec, description: `${protocol} ${names.join(', ')}` };
}

function thriftProtocol(value: string | undefined): ThriftProtocolName {
  const protocol = (value ?? 'binary') as ThriftProtocolName;
  if (!PROTOCOLS.includes(protocol)) throw new UsageError(`--protocol must be binary or compact, got '${protocol}'`);
  return protocol;
}
