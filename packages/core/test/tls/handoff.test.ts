// The handoff orchestration on the host. kmux declines to move a suite kTLS cannot take
// (here TLS 1.3 AES-128-CCM, which the kernel supports but kmux does not hand over): in
// 'auto' the connection goes on over user-space TLS, in 'require' it is closed.
import { once } from 'node:events';
import { connect as connectTls, createSecureContext, createServer as createTlsServer } from 'node:tls';
import type { AddressInfo, Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { KtlsCounters } from '../../src/tls/counters.js';
import { ktlsAccept, ktlsConnect, KtlsHandoffError, type TlsConnection } from '../../src/tls/handoff.js';
import { collectUntil, pausedListener, removeDir, selfSignedCert } from './fixtures.js';

const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));

const ccm = { ciphers: 'TLS_AES_128_CCM_SHA256', minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

function acceptOne(mode: 'auto' | 'require', counters: KtlsCounters): Promise<{ server: Server; port: number; result: Promise<TlsConnection> }> {
  let resolveResult!: (c: Promise<TlsConnection>) => void;
  const result = new Promise<Promise<TlsConnection>>((r) => (resolveResult = r));
  return pausedListener((socket) => {
    resolveResult(ktlsAccept(socket, { secureContext: createSecureContext({ key, cert, ...ccm }), ktls: mode, counters }));
  }).then(({ server, port }) => ({ server, port, result: result.then((p) => p) }));
}

describe('handoff declined (a suite kTLS cannot take)', () => {
  it("'auto' keeps the connection on user-space TLS, working both ways, and counts why", async () => {
    const counters = new KtlsCounters();
    const { server, port, result } = await acceptOne('auto', counters);
    const client = connectTls({ port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...ccm });
    client.once('secureConnect', () => client.write('early bytes, sent right behind the Finished'));
    const connection = await result;
    expect(connection.kind).toBe('userspace');
    if (connection.kind !== 'userspace') return;
    expect(connection.code).toBe('cipher_not_supported');
    expect(connection.reason).toMatch(/TLS_AES_128_CCM_SHA256/);
    const request = await collectUntil(connection.socket, (all) => all.length >= 43);
    expect(request.toString()).toBe('early bytes, sent right behind the Finished');
    const reply = collectUntil(client, (all) => all.toString() === 'reply over user-space TLS');
    connection.socket.write('reply over user-space TLS');
    await reply;
    const ended = once(client, 'end');
    connection.socket.end();
    await ended;
    expect(counters.snapshot()).toEqual({ handoffs: {}, userspace: { cipher_not_supported: 1 }, failed: {}, closed: {}, keyUpdates: {} });
    client.destroy();
    server.close();
  });

  it("'require' closes the connection and says why", async () => {
    const counters = new KtlsCounters();
    const { server, port, result } = await acceptOne('require', counters);
    const client = connectTls({ port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...ccm });
    client.on('error', () => {});
    const closed = new Promise((resolve) => client.once('close', resolve));
    const error = await result.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(KtlsHandoffError);
    // On a kernel without kTLS the probe refuses first; with kTLS the suite is refused.
    expect((error as KtlsHandoffError).code).toMatch(/^(ktls_unavailable|cipher_not_supported)$/);
    await closed;
    expect(Object.keys(counters.snapshot().failed)).toHaveLength(1);
    server.close();
  });
});

describe('ktlsConnect', () => {
  it('fails the handshake on a certificate it cannot verify, by default, and counts it', async () => {
    const server = createTlsServer({ key, cert }, (socket) => socket.on('error', () => {}));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const counters = new KtlsCounters();
    const error = await ktlsConnect({ port: (server.address() as AddressInfo).port, servername: 'localhost', ktls: 'auto', counters }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KtlsHandoffError);
    expect((error as KtlsHandoffError).code).toBe('handshake');
    expect(String((error as Error).cause)).toMatch(/self-signed|self signed/);
    expect(counters.snapshot().failed).toEqual({ handshake: 1 });
    server.close();
  });

  it("'auto' on a suite kTLS cannot take goes on over user-space TLS", async () => {
    const server = createTlsServer({ key, cert, ...ccm }, (socket) => {
      socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const connection = await ktlsConnect({ port: (server.address() as AddressInfo).port, servername: 'localhost', ca: cert, ktls: 'auto', ...ccm });
    expect(connection.kind).toBe('userspace');
    const reply = collectUntil(connection.socket, (all) => all.toString() === 'ECHO');
    connection.socket.write('echo');
    await reply;
    connection.socket.destroy();
    server.close();
  });
});
