import { BalancedClient, type BalancedClientOptions } from './balanced-client.js';
import { Client, type ClientOptions } from './client.js';
import type { ServerAddress } from './server-resolver.js';

/** What a codec's client (Thrift, protobuf, raw) sends its requests through: one server's Client, or a BalancedClient. */
export type RequestChannel = Pick<Client, 'request' | 'send' | 'connect' | 'close'>;

export type ChannelOptions = Omit<ClientOptions, 'port'> & {
  readonly port?: number;
  /** Instead of host and port: spread requests over these servers (BalancedClient). */
  readonly servers?: readonly ServerAddress[];
} & Pick<BalancedClientOptions, 'ejectMs' | 'resolveEveryMs' | 'lookup'>;

export function createChannel({ servers, ejectMs, resolveEveryMs, lookup, ...options }: ChannelOptions): Client | BalancedClient {
  if (servers) return new BalancedClient({ ...options, servers, ejectMs, resolveEveryMs, lookup });
  if (options.port === undefined) throw new RangeError('a client needs a port, or servers');
  return new Client({ ...options, port: options.port });
}
