// kmux's client side of the handoff on a real kernel: ktlsConnect against a stock Node TLS
// server (whose NewSessionTickets then reach the kernel and are consumed), and kTLS on both
// ends moving a megabyte each way.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { KtlsCounters } from '../../packages/core/src/tls/counters.js';
import { ktlsConnect } from '../../packages/core/src/tls/handoff.js';
import { collectUntil, pin, removeDir, selfSignedCert, SUITES } from '../../packages/core/test/tls/fixtures.js';
import { BYE, frames, parseFrames, serveFramedEcho, startKtlsServer, whenClosed } from './ktls-peers.js';

const series = process.env.KMUX_KERNEL_SERIES;
const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));

describe.each(SUITES)(`kernel ${series}: kTLS client, $version $ciphers`, (suite) => {
  it('talks to a stock Node TLS server, consuming its session tickets, and closes with close_notify', async () => {
    const server = createTlsServer({ key, cert, ...pin(suite) }, (socket) => {
      socket.on('error', () => {});
      serveFramedEcho(socket);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const counters = new KtlsCounters();
    const connection = await ktlsConnect({
      port: (server.address() as AddressInfo).port,
      servername: 'localhost',
      ca: cert,
      ktls: 'require',
      counters,
      ...pin(suite),
    });
    expect(connection.kind).toBe('ktls');
    if (connection.kind !== 'ktls') return;
    // The tickets were still in flight at secureConnect: the kernel gets them, from sequence 0.
    expect(connection.info).toMatchObject({ txSeq: suite.version === 'TLSv1.3' ? 0n : 1n, rxSeq: suite.version === 'TLSv1.3' ? 0n : 1n });
    const reply = collectUntil(connection.socket, (all) => parseFrames(all).length === 3);
    connection.socket.write(frames(['one', 'two', BYE]));
    expect(parseFrames(await reply)).toEqual(['ONE', 'TWO', 'BYE']);
    // The server ended after "bye" (close_notify); our end was answered automatically.
    await whenClosed(connection.socket);
    expect(connection.socket.closeReason).toBe('close_notify');
    expect(counters.snapshot()).toMatchObject({ handoffs: { [`${suite.version} ${suite.cipher}`]: 1 }, closed: { close_notify: 1 } });
    server.close();
  });
});

describe(`kernel ${series}: kTLS on both ends`, () => {
  it.each([SUITES[0]!, SUITES[5]!])('moves 1 MiB frames and 2,000 small ones each way intact, $version $ciphers', async (suite) => {
    const server = await startKtlsServer(key, cert, suite);
    const connection = await ktlsConnect({ port: server.port, servername: 'localhost', ca: cert, ktls: 'require', ...pin(suite) });
    if (connection.kind !== 'ktls') throw new Error('the client is not on kTLS');
    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = 97 + (i % 26);
    const small = Array.from({ length: 2000 }, (_, i) => `message ${i} ${'.'.repeat(i % 97)}`);
    const expected = [big.toString().toUpperCase(), ...small.map((s) => s.toUpperCase())];
    const reply = collectUntil(connection.socket, (all) => parseFrames(all).length === expected.length, 120_000);
    connection.socket.write(frames([big.toString(), ...small]));
    const got = parseFrames(await reply);
    expect(got.length).toBe(expected.length);
    expect(got[0] === expected[0]).toBe(true);
    expect(got.slice(1)).toEqual(expected.slice(1));
    connection.socket.end();
    await whenClosed(connection.socket);
    expect(connection.socket.closeReason).toBe('close_notify');
    server.close();
  });
});
