// kTLS handoff on a real kernel: a Node TLS handshake, then the record layer in the kernel,
// talking to stock peers (openssl s_client, Node's tls client) for every suite kmux hands
// over, with the kernel's own counters (/proc/net/tls_stat) showing who did the crypto.
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ktlsSupport } from '../../packages/core/src/tls/kernel-support.js';
import { readTlsStat, type TlsStat } from '../../packages/core/src/tls/tls-stat.js';
import { collectUntil, pin, removeDir, selfSignedCert, SUITES } from '../../packages/core/test/tls/fixtures.js';
import { BYE, frames, opensslClient, parseFrames, startKtlsServer, whenClosed } from './ktls-peers.js';

const series = process.env.KMUX_KERNEL_SERIES;
const { key, cert, dir } = selfSignedCert();
const caFile = join(dir, 'ca.pem');
writeFileSync(caFile, cert);
afterAll(() => removeDir(dir));

const requests = ['first request', 'a second one', 'x'.repeat(20_000), BYE];
const replies = requests.map((r) => r.toUpperCase());

function delta(before: TlsStat, after: TlsStat, name: string): number {
  return (after[name] ?? NaN) - (before[name] ?? NaN);
}

beforeAll(() => {
  const support = ktlsSupport();
  expect(support.available, support.reason).toBe(true);
  expect([...support.ciphers].sort()).toEqual(['aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305']);
});

describe.each(SUITES)(`kernel ${series}: kTLS server, $version $ciphers`, (suite) => {
  it('serves openssl s_client: framed requests both ways, then close_notify both ways', async () => {
    const server = await startKtlsServer(key, cert, suite);
    const before = readTlsStat()!;
    const client = await opensslClient(server.port, caFile, suite, frames(requests));
    const connection = await server.connections[0]!;
    expect(connection.kind).toBe('ktls');
    if (connection.kind !== 'ktls') return;
    expect(connection.info).toMatchObject({ version: suite.version, cipher: suite.cipher, standardName: suite.standardName });
    // OpenSSL's server sent two NewSessionTickets under the application keys before the handoff.
    expect(connection.info.txSeq).toBe(suite.version === 'TLSv1.3' ? 2n : 1n);
    expect(client.code, client.stderr).toBe(0);
    expect(parseFrames(client.stdout)).toEqual(replies);
    await whenClosed(connection.socket);
    // We ended first (after "bye"); s_client answered with its close_notify.
    expect(connection.socket.closeReason).toBe('close_notify');
    const after = readTlsStat()!;
    expect(delta(before, after, 'TlsTxSw'), JSON.stringify(after)).toBe(1);
    expect(delta(before, after, 'TlsRxSw'), JSON.stringify(after)).toBe(1);
    expect(server.counters.snapshot()).toEqual({
      handoffs: { [`${suite.version} ${suite.cipher}`]: 1 },
      userspace: {},
      failed: {},
      closed: { close_notify: 1 },
      keyUpdates: {},
    });
    server.close();
  });

  it("serves Node's tls client; the client's close_notify is answered", async () => {
    const server = await startKtlsServer(key, cert, suite);
    const client = connectTls({ port: server.port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(suite) });
    await once(client, 'secureConnect');
    const received = collectUntil(client, (all) => parseFrames(all).length === 3);
    client.write(frames(requests.slice(0, 3)));
    expect(parseFrames(await received)).toEqual(replies.slice(0, 3));
    const connection = await server.connections[0]!;
    expect(connection.kind).toBe('ktls');
    if (connection.kind !== 'ktls') return;
    expect(connection.socket.bytesRead).toBe(frames(requests.slice(0, 3)).length);
    // TLS 1.3 lets the client half-close; with TLS 1.2 Node ends both ways. Either way
    // our close_notify comes back and the client sees a clean end.
    const ended = once(client, 'end');
    client.end();
    await ended;
    await whenClosed(connection.socket);
    expect(connection.socket.closeReason).toBe('close_notify');
    client.destroy();
    server.close();
  });
});

describe(`kernel ${series}: /proc/net/tls_stat`, () => {
  it('shows the kernel holding both directions of a live connection in software kTLS', async () => {
    const before = readTlsStat()!;
    const server = await startKtlsServer(key, cert, SUITES[0]!);
    const client = connectTls({ port: server.port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(SUITES[0]!) });
    await once(client, 'secureConnect');
    const received = collectUntil(client, (all) => parseFrames(all).length === 1);
    client.write(frames(['ping']));
    await received;
    const during = readTlsStat()!;
    expect(delta(before, during, 'TlsCurrTxSw'), JSON.stringify(during)).toBe(1);
    expect(delta(before, during, 'TlsCurrRxSw'), JSON.stringify(during)).toBe(1);
    client.end();
    const connection = await server.connections[0]!;
    await whenClosed(connection.socket);
    const after = readTlsStat()!;
    expect(delta(before, after, 'TlsCurrTxSw')).toBe(0);
    expect(delta(before, after, 'TlsCurrRxSw')).toBe(0);
    expect(delta(before, after, 'TlsDecryptError')).toBe(0);
    client.destroy();
    server.close();
  });
});
