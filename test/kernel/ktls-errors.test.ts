// What ends a kTLS connection other than close_notify, on a real kernel: a tampered record
// (EBADMSG), a TLS 1.3 KeyUpdate the kernel cannot follow (EBUSY before Linux 6.14, or no
// secrets kept: keyUpdate 'close'), and
// what happens when the kernel lacks the negotiated cipher (user-space TLS, or refusal).
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { connect as connectTls } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeKtls, RecordType } from '../../packages/native/src/index.js';
import { KtlsError } from '../../packages/core/src/tls/errors.js';
import { ktlsConnect, KtlsHandoffError } from '../../packages/core/src/tls/handoff.js';
import { keyUpdateMessage } from '../../packages/core/src/tls/key-update.js';
import { ktlsSupport, probeKtlsSupport } from '../../packages/core/src/tls/kernel-support.js';
import type { KtlsSocket } from '../../packages/core/src/tls/ktls-socket.js';
import { readTlsStat } from '../../packages/core/src/tls/tls-stat.js';
import { collectUntil, pin, removeDir, selfSignedCert, SUITES, type SuiteCase } from '../../packages/core/test/tls/fixtures.js';
import { frames, parseFrames, startKtlsServer, tamperingClient, type KtlsTestServer } from './ktls-peers.js';

const series = process.env.KMUX_KERNEL_SERIES;
const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));

async function ktlsServerSocket(server: KtlsTestServer, index: number): Promise<KtlsSocket> {
  const connection = await server.connections[index]!;
  if (connection.kind !== 'ktls') throw new Error(`connection ${index} is on ${connection.kind} TLS: ${connection.reason}`);
  return connection.socket;
}

/** Resolves with the error the socket was destroyed with (null if it closed cleanly). */
function closedWith(socket: KtlsSocket): Promise<Error | null> {
  if (socket.destroyed) return Promise.resolve(socket.errored);
  return new Promise((resolve) => {
    let error: Error | null = null;
    socket.on('error', (e: Error) => (error = e));
    socket.once('close', () => resolve(error));
  });
}

describe.each(SUITES)(`kernel ${series}: tampered record, $version $ciphers`, (suite) => {
  it('closes only that connection, with EBADMSG, counted', async () => {
    const server = await startKtlsServer(key, cert, suite);
    const healthy = connectTls({ port: server.port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(suite) });
    await once(healthy, 'secureConnect');
    const { socket: victim, armTamper } = tamperingClient(server.port, cert, suite);
    victim.on('error', () => {});
    await once(victim, 'secureConnect');
    const victimReply = collectUntil(victim, (all) => parseFrames(all).length === 1);
    victim.write(frames(['before']));
    expect(parseFrames(await victimReply)).toEqual(['BEFORE']);
    const victimServerSide = await ktlsServerSocket(server, 1);
    const closed = closedWith(victimServerSide);

    const before = readTlsStat()!;
    armTamper();
    victim.write(frames(['tampered']));
    const error = await closed;
    expect(error).toBeInstanceOf(KtlsError);
    expect(error).toMatchObject({ reason: 'bad_record', code: 'EBADMSG' });
    expect(victimServerSide.closeReason).toBe('bad_record');
    expect(readTlsStat()!.TlsDecryptError! - before.TlsDecryptError!).toBe(1);
    expect(server.counters.snapshot().closed).toEqual({ bad_record: 1 });

    // The other connection on the same server goes on.
    const reply = collectUntil(healthy, (all) => parseFrames(all).length === 1);
    healthy.write(frames(['still fine']));
    expect(parseFrames(await reply)).toEqual(['STILL FINE']);
    healthy.destroy();
    victim.destroy();
    server.close();
  });
});

describe(`kernel ${series}: TLS 1.3 KeyUpdate from the peer`, () => {
  const suite = SUITES[0]!;

  async function sendKeyUpdate(server: KtlsTestServer): Promise<{ error: Error | null; serverSide: KtlsSocket }> {
    // The peer is kmux's own kTLS client: its kernel sends the KeyUpdate record.
    const client = await ktlsConnect({ port: server.port, servername: 'localhost', ca: cert, ktls: 'require', ...pin(suite) });
    if (client.kind !== 'ktls') throw new Error('the client is not on kTLS');
    client.socket.on('error', () => {});
    const reply = collectUntil(client.socket, (all) => parseFrames(all).length === 1);
    client.socket.write(frames(['before the update']));
    expect(parseFrames(await reply)).toEqual(['BEFORE THE UPDATE']);
    const serverSide = await ktlsServerSocket(server, 0);
    const closed = closedWith(serverSide);
    expect(nativeKtls().sendRecord(client.socket.fd, keyUpdateMessage(true), RecordType.handshake)).toBe(5);
    const error = await closed;
    client.socket.destroy();
    return { error, serverSide };
  }

  // Only the test for this kernel is defined: a skipped test fails the suite (run.sh).
  if (ktlsSupport().rekey) {
    it("rekeying is the default here: the peer's KeyUpdate is followed, and answered when asked", async () => {
      const server = await startKtlsServer(key, cert, suite);
      const client = await ktlsConnect({ port: server.port, servername: 'localhost', ca: cert, ktls: 'require', ...pin(suite) });
      if (client.kind !== 'ktls') throw new Error('the client is not on kTLS');
      const serverSide = await ktlsServerSocket(server, 0);
      const updates: string[] = [];
      serverSide.on('keyUpdate', (direction: string) => updates.push(direction));
      client.socket.keyUpdate(true);
      const reply = collectUntil(client.socket, (all) => parseFrames(all).length === 1);
      client.socket.write(frames(['after the update']));
      expect(parseFrames(await reply)).toEqual(['AFTER THE UPDATE']);
      expect(updates).toEqual(['rx', 'tx']);
      expect(server.counters.snapshot()).toMatchObject({ closed: {}, keyUpdates: { rx: 1, tx: 1 } });
      client.socket.destroy();
      server.close();
    });
  } else {
    it('rekeying is attempted when asked for, and this kernel refuses it with EBUSY: the connection closes with that error', async () => {
      const server = await startKtlsServer(key, cert, suite, { keyUpdate: 'rekey' });
      const { error, serverSide } = await sendKeyUpdate(server);
      expect(error).toBeInstanceOf(KtlsError);
      expect(error).toMatchObject({ reason: 'key_update', code: 'ERR_KTLS_KEY_UPDATE' });
      expect((error as Error).cause).toMatchObject({ code: 'EBUSY', syscall: 'setsockopt(SOL_TLS, TLS_RX)' });
      expect((error as Error).message).toMatch(/EBUSY/);
      expect(serverSide.closeReason).toBe('key_update');
      expect(server.counters.snapshot()).toMatchObject({ closed: { key_update: 1 }, keyUpdates: { refused: 1 } });
      server.close();
    });
  }

  it("without kept traffic secrets (keyUpdate 'close', this kernel's default before 6.14) a KeyUpdate closes the connection with a clear error", async () => {
    const server = await startKtlsServer(key, cert, suite, { keyUpdate: 'close' });
    const { error } = await sendKeyUpdate(server);
    expect(error).toMatchObject({ reason: 'key_update', code: 'ERR_KTLS_KEY_UPDATE' });
    expect((error as Error).message).toMatch(/kmux kept no traffic secrets: .*6\.14/);
    expect((error as Error).cause).toBeUndefined();
    expect(server.counters.snapshot()).toMatchObject({ closed: { key_update: 1 }, keyUpdates: { refused: 1 } });
    server.close();
  });
});

describe(`kernel ${series}: the kernel lacks the negotiated cipher`, () => {
  const moduleFile = fileURLToPath(
    new URL(`./cache/${series}/initramfs-root/lib/modules/${release()}/kernel/crypto/chacha20poly1305.ko`, import.meta.url),
  );
  const chacha: SuiteCase = SUITES.find((s) => s.version === 'TLSv1.3' && s.cipher === 'chacha20-poly1305')!;

  async function withoutChacha(run: (support: ReturnType<typeof probeKtlsSupport>) => Promise<void>): Promise<void> {
    execFileSync('busybox', ['rmmod', 'chacha20poly1305']);
    try {
      const support = probeKtlsSupport();
      expect(support.ciphers.has('chacha20-poly1305'), support.reason).toBe(false);
      expect(support.reason).toMatch(/missing chacha20-poly1305 .*ENOENT/);
      await run(support);
    } finally {
      execFileSync('busybox', ['insmod', moduleFile]);
    }
  }

  it("'auto' keeps that connection on user-space TLS, working, and counts it", async () => {
    await withoutChacha(async (support) => {
      const server = await startKtlsServer(key, cert, chacha, { ktls: 'auto', support });
      const client = connectTls({ port: server.port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(chacha) });
      await once(client, 'secureConnect');
      const reply = collectUntil(client, (all) => parseFrames(all).length === 2);
      client.write(frames(['over', 'user-space tls']));
      expect(parseFrames(await reply)).toEqual(['OVER', 'USER-SPACE TLS']);
      const connection = await server.connections[0]!;
      expect(connection.kind).toBe('userspace');
      if (connection.kind === 'userspace') expect(connection.code).toBe('kernel_lacks_cipher');
      expect(server.counters.snapshot().userspace).toEqual({ kernel_lacks_cipher: 1 });
      client.destroy();
      server.close();
    });
  });

  it("'require' closes it and says why", async () => {
    await withoutChacha(async (support) => {
      const server = await startKtlsServer(key, cert, chacha, { ktls: 'require', support });
      const client = connectTls({ port: server.port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(chacha) });
      client.on('error', () => {});
      await new Promise((resolve) => client.once('close', resolve));
      const refusal = await server.connections[0]!.then(() => null, (e: unknown) => e);
      expect(refusal).toBeInstanceOf(KtlsHandoffError);
      expect(refusal).toMatchObject({ code: 'kernel_lacks_cipher' });
      expect(server.counters.snapshot().failed).toEqual({ 'required:kernel_lacks_cipher': 1 });
      server.close();
    });
  });
});
