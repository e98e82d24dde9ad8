// The stock `thrift` npm client (framed, binary, over TLS) calling the example Catalog
// service on a kmux Server whose connections are on kTLS; and a rough kTLS vs user-space
// TLS throughput comparison on the same server code (TCG emulation: only the ratio means
// anything, and it is printed, not asserted).
import { afterAll, describe, expect, it } from 'vitest';
import { RawClient, readTlsStat, Server } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { removeDir, selfSignedCert } from '../../packages/core/test/tls/fixtures.js';
import { Catalog, EXAMPLE_DIR, expectedHashRounds, thrift } from '../interop/catalog.js';
import { quiet, startKmuxTlsServer, statDelta } from './ktls-peers.js';

const series = process.env.KMUX_KERNEL_SERIES;
const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));

describe(`kernel ${series}: stock thrift client over TLS, kmux Thrift server on kTLS`, () => {
  it('calls echo, hashRounds and pipelined echoes on one connection; the kernel holds its records', async () => {
    const server = new Server({
      codec: thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: `${EXAMPLE_DIR}handler.js`, protocol: 'binary' }),
      workers: 2,
      tls: { key, cert },
      ktls: 'require',
      logger: quiet,
    });
    const { port } = await server.listen();
    const before = readTlsStat()!;
    const connection = thrift.createSSLConnection('127.0.0.1', port, {
      transport: thrift.TFramedTransport,
      protocol: thrift.TBinaryProtocol,
      ca: cert,
      servername: 'localhost',
    });
    connection.on('error', () => {});
    const client = thrift.createClient(Catalog, connection);
    const call = (method: string, ...args: unknown[]): Promise<any> =>
      new Promise((resolve, reject) => client[method](...args, (error: unknown, value: unknown) => (error ? reject(error) : resolve(value))));
    try {
      expect(await call('echo', Buffer.from('over kTLS'))).toEqual(Buffer.from('over kTLS'));
      const data = Buffer.from('catalog');
      expect(await call('hashRounds', data, 50)).toEqual(expectedHashRounds(data, 50));
      const payloads = Array.from({ length: 50 }, (_, i) => Buffer.from(`pipelined ${i} `.repeat(1 + (i % 9))));
      expect(await Promise.all(payloads.map((p) => call('echo', p)))).toEqual(payloads);
      const during = readTlsStat()!;
      expect(statDelta(before, during, 'TlsCurrTxSw')).toBe(1);
      expect(statDelta(before, during, 'TlsCurrRxSw')).toBe(1);
      const tls = server.stats().tls!;
      expect(Object.values(tls.handoffs)).toEqual([1]);
      // The thrift library sets secureProtocol 'SSLv23_method', which caps Node at TLS 1.2.
      expect(Object.keys(tls.handoffs)[0]).toMatch(/^TLSv1\.[23] (aes-gcm-128|aes-gcm-256|chacha20-poly1305)$/);
      expect(server.stats().methods.echo?.calls).toBe(51);
    } finally {
      connection.end();
      await server.close({ timeoutMs: 2_000 });
    }
  });
});

describe(`kernel ${series}: kTLS against user-space TLS, same server, same client code`, () => {
  /** Pipelined 1 KiB echoes over one connection: requests per second. */
  async function run(ktls: 'require' | 'off'): Promise<number> {
    const { server, port } = await startKmuxTlsServer(key, cert, null, { ktls, workers: 2 });
    const client = new RawClient({ port, tls: { ca: cert }, ktls: ktls === 'off' ? 'off' : 'require', timeoutMs: 120_000 });
    try {
      const payload = Buffer.alloc(1024, 0x61);
      await client.call('echo', payload);
      const total = 2_000;
      const window = 64;
      const start = performance.now();
      for (let sent = 0; sent < total; sent += window) {
        const replies = await Promise.all(Array.from({ length: window }, () => client.call('echo', payload)));
        expect(replies.every((r) => r.equals(payload))).toBe(true);
      }
      const rate = total / ((performance.now() - start) / 1000);
      expect(server.stats().tls?.ktls).toBe(ktls === 'require');
      return rate;
    } finally {
      client.close();
      await server.close({ timeoutMs: 0 });
    }
  }

  it('serves the same load both ways (rates printed)', async () => {
    const userspace = await run('off');
    const ktls = await run('require');
    console.log(
      `### ${series} 1 KiB echo, 1 connection, 64 in flight, 2 workers, TCG: user-space TLS ${userspace.toFixed(0)} req/s, ` +
        `kTLS ${ktls.toFixed(0)} req/s (${(ktls / userspace).toFixed(2)}x)`,
    );
  });
});
