import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameSplitter, decodeRawReply, encodeFrame, encodeRawRequest } from '@kmux/core';
import { cleanup, gateTag, rejection, release, startServer, started, type Started } from '../helpers.js';

/** A throwaway self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI. */
function selfSignedCert(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'kmux-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
        '-subj', '/CN=kmux-test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('TLS', () => {
  let s: Started;
  let cert: Buffer;
  let key: Buffer;
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning);
  };

  beforeAll(async () => {
    const pair = selfSignedCert();
    ({ cert, key } = pair);
    s = await startServer({ tls: { key: pair.key, cert: pair.cert } });
    process.on('warning', onWarning);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    await cleanup();
  });

  it('serves pipelined requests to a client that trusts the certificate', async () => {
    const client = s.newClient({ tls: { ca: cert } });
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => client.call('echo', `tls ${i}`)));
    expect(replies.map(String)).toEqual(Array.from({ length: 200 }, (_, i) => `tls ${i}`));
    const large = Buffer.alloc(1 << 20, 0x5a);
    expect((await client.call('echo', large)).equals(large)).toBe(true);
  });

  it('verifies the server certificate by default: no CA, no connection', async () => {
    const client = s.newClient({ tls: true, connectAttempts: 1 });
    const error = await rejection(client.call('echo', 'x'));
    expect(error.kind).toBe('connection_closed');
    expect((error.cause as { code?: string }).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(s.server.stats().connections.accepted).toBe(1);
    expect(s.server.stats().methods.x).toBeUndefined();
  });

  /** Whether the peer closed `socket` within 3 s (for a server that would otherwise hold it for minutes). */
  const closedByServer = (socket: Socket): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 3000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  it('closes and counts a connection that leaves before the handshake (a TCP health check)', async () => {
    const before = s.server.stats().connectionErrors.tls_handshake ?? 0;
    const probe = connect({ host: '127.0.0.1', port: s.port }, () => probe.end());
    probe.on('error', () => {});
    expect(await closedByServer(probe)).toBe(true);
    // (The certificate-rejecting client of the previous test may be counted meanwhile too.)
    await expect.poll(() => s.server.stats().connectionErrors.tls_handshake ?? 0).toBeGreaterThan(before);
  });

  it('closes a connection that never starts the handshake once handshakeTimeout passes', async () => {
    const { port, server } = await startServer({ workers: 1, tls: { key, cert, handshakeTimeout: 200 } });
    const silent = connect({ host: '127.0.0.1', port });
    silent.on('error', () => {});
    expect(await closedByServer(silent)).toBe(true);
    expect(server.stats().connectionErrors).toEqual({ tls_handshake: 1 });
  });

  it('does not hand a plain-TCP client to the workers', async () => {
    const calls = s.server.stats().methods.echo?.calls;
    const client = s.newClient({ connectAttempts: 1, timeoutMs: 2000 });
    const error = await rejection(client.call('echo', 'plain'));
    expect(error.kind).toBe('connection_closed');
    expect(s.server.stats().methods.echo?.calls).toBe(calls);
  });

  it('answers a TLS client that half-closes after its request', async () => {
    const socket = connectTls({ host: '127.0.0.1', port: s.port, ca: cert, servername: 'localhost' });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const tag = gateTag('tls-half');
    socket.write(encodeFrame(encodeRawRequest(1, 'wait', Buffer.from(tag))));
    socket.end();
    await started(tag);
    const replies: Buffer[] = [];
    const splitter = new FrameSplitter(1 << 20);
    socket.on('data', (chunk: Buffer) => splitter.push(chunk, (body) => replies.push(Buffer.from(body))));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    release(tag);
    await closed;
    expect(replies.map((r) => decodeRawReply(r).toString())).toEqual([`released ${tag}`]);
  });

  it('does not send an IP address as the TLS server name (RFC 6066; Node warns DEP0123)', () => {
    expect(warnings.filter((w) => (w as { code?: string }).code === 'DEP0123').map(String)).toEqual([]);
  });
});
