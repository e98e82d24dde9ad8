import { BalancedClient, type ServerAddress } from './balanced-client.js';
import { Client, type ClientOptions } from './client.js';

/** What a codec's client (Thrift, protobuf) sends its requests through: one server's Client, or a BalancedClient. */
export type RequestChannel = Pick<Client, 'request' | 'send' | 'connect' | 'close'>;

export type ChannelOptions = Omit<ClientOptions, 'port'> & {
  readonly port?: number;
  /** Instead of host and port: spread requests over these servers (BalancedClient). */
  readonly servers?: readonly ServerAddress[];
};

export function createChannel({ servers, ...options }: ChannelOptions): RequestChannel {
  if (servers) return new BalancedClient({ ...options, servers });
  if (options.port === undefined) throw new RangeError('a client needs a port, or servers');
  return new Client({ ...options, port: options.port });
}
