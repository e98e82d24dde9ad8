// The stock Node Catalog client on the thrift library's THeaderProtocol, sending headers.
import type { ThriftProtocolName } from '@kmux/thrift';
import { Catalog, thrift } from './catalog.js';

/**
 * The stock Node client on the library's THeaderProtocol (over the buffered transport: THeader
 * frames carry their own length). THeaderProtocol.flush() writes the THeader, but generated
 * code (thrift-compiler 0.17) flushes the transport instead, so without help the library sends
 * plain unframed messages: the transport's flush does what the protocol's would.
 */
export function headerClient(port: number, protocol: ThriftProtocolName, headers: Record<string, string>) {
  const connection = thrift.createConnection('127.0.0.1', port, { transport: thrift.TBufferedTransport, protocol: thrift.THeaderProtocol });
  connection.on('error', () => undefined);
  const client = thrift.createClient(Catalog, connection);
  const flush = client.output.flush;
  client.output.flush = function (this: any) {
    this.writeHeaders();
    return flush.call(this);
  };
  if (protocol === 'compact') client.output.setProtocolId(2);
  for (const [key, value] of Object.entries(headers)) client.output.setWriteHeader(key, value);
  const call = (method: string, ...args: unknown[]): Promise<any> =>
    new Promise((resolve, reject) => client[method](...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
  return { call, close: () => connection.end() };
}
