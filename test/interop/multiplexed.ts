// Catalog and Inventory (examples/thrift) on one port, as Thrift's multiplexed clients call
// them: the server, and the stock Node client over one connection through thrift.Multiplexer.
import { createRequire } from 'node:module';
import type { ServerOptions } from '@kmux/core';
import { thriftCodec, type ThriftProtocolName } from '@kmux/thrift';
import { Catalog, EXAMPLE_DIR, startServer, thrift } from './catalog.js';

export const Inventory: any = createRequire(EXAMPLE_DIR)('./gen-nodejs/Inventory.js');

/** A kmux Server with 2 workers serving both services, Catalog also under bare names. */
export function startMultiplexedServer(protocol: ThriftProtocolName, options: Omit<ServerOptions, 'codec'> = {}) {
  const services = {
    Catalog: { service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: `${EXAMPLE_DIR}handler.js` },
    Inventory: { service: `${EXAMPLE_DIR}gen-nodejs/Inventory.js`, handler: `${EXAMPLE_DIR}inventory-handler.js` },
  };
  return startServer(thriftCodec({ services, defaultService: 'Catalog', protocol }), options);
}

type Call = (method: string, ...args: unknown[]) => Promise<any>;

/** Stock Node clients for `services` over one framed connection, multiplexed by thrift.Multiplexer. */
export function stockMultiplexedClients(port: number, protocol: ThriftProtocolName, services: Record<string, unknown>) {
  const connection = thrift.createConnection('127.0.0.1', port, {
    transport: thrift.TFramedTransport,
    protocol: protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol,
  });
  connection.on('error', () => undefined);
  const multiplexer = new thrift.Multiplexer();
  const calls: Record<string, Call> = {};
  for (const [name, service] of Object.entries(services)) {
    const client = multiplexer.createClient(name, service, connection);
    calls[name] = (method, ...args) =>
      new Promise((resolve, reject) => client[method](...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
  }
  return { calls, close: () => connection.end() };
}

export { Catalog };
