// Shared by the host tests of src/tls and the VM tests in test/kernel/ktls-*.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsCipher } from '@kmux/native';

/** A throwaway EC P-256 certificate for 127.0.0.1 and localhost (ECDSA suites), made with the openssl CLI. */
export function selfSignedCert(): { key: Buffer; cert: Buffer; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kmux-ktls-'));
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')), dir };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface SuiteCase {
  readonly version: 'TLSv1.2' | 'TLSv1.3';
  /** Node's `ciphers` string (OpenSSL names; TLS 1.3 suites by their IANA names). */
  readonly ciphers: string;
  /** The same suite as `openssl s_client` takes it: -ciphersuites for 1.3, -cipher for 1.2. */
  readonly standardName: string;
  readonly cipher: TlsCipher;
}

export const SUITES: readonly SuiteCase[] = [
  { version: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', standardName: 'TLS_AES_128_GCM_SHA256', cipher: 'aes-gcm-128' },
  { version: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384', standardName: 'TLS_AES_256_GCM_SHA384', cipher: 'aes-gcm-256' },
  { version: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256', standardName: 'TLS_CHACHA20_POLY1305_SHA256', cipher: 'chacha20-poly1305' },
  { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', standardName: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', cipher: 'aes-gcm-128' },
  { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', standardName: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', cipher: 'aes-gcm-256' },
  { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305', standardName: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', cipher: 'chacha20-poly1305' },
];

export const suiteName = (s: SuiteCase): string => `${s.version} ${s.cipher}`;

/** node:tls options that pin one suite and version. */
export function pin(s: SuiteCase): { ciphers: string; minVersion: SuiteCase['version']; maxVersion: SuiteCase['version'] } {
  return { ciphers: s.ciphers, minVersion: s.version, maxVersion: s.version };
}

/** A TCP listener that hands over each accepted socket before it has read anything. */
export async function pausedListener(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ pauseOnConnect: true }, onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** A TCP connection that has read nothing: paused before connecting. */
export async function pausedConnect(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.pause();
  await once(socket, 'connect');
  return socket;
}

/** Collects a stream's data until `predicate(all)` holds. */
export function collectUntil(stream: NodeJS.ReadableStream, predicate: (all: Buffer) => boolean, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let all = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`timed out with ${all.length} bytes: ${all.toString('latin1').slice(0, 200)}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      all = Buffer.concat([all, chunk]);
      if (predicate(all)) done(null);
    };
    const onEnd = (): void => done(new Error(`the stream ended with ${all.length} bytes: ${all.toString('latin1').slice(0, 200)}`));
    const done = (error: Error | null): void => {
      clearTimeout(timer);
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', done);
      if (error) reject(error);
      else resolve(all);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', done);
  });
}
