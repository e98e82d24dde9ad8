// Control records and failures on a kmux Server's kTLS connections, on a real kernel: a
// NewSessionTicket is consumed, a KeyUpdate is followed (Linux ≥ 6.14) or, where the kernel
// cannot (EBUSY before 6.14), closes only its connection, a tampered record (EBADMSG) too,
// each counted in stats(); (KeyUpdate in depth: ktls-rekey.test.ts)
// and a cipher the kernel has lost keeps that connection on user-space TLS ('auto') or
// closes it ('require'). close_notify both ways is in ktls-server.test.ts.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { connect as connectTls } from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RawClient, readTlsStat, type Server } from '@kmux/core';
import { nativeKtls, RecordType } from '../../packages/native/src/index.js';
import { ktlsConnect } from '../../packages/core/src/tls/handoff.js';
import { keyUpdateMessage } from '../../packages/core/src/tls/key-update.js';
import { ktlsSupport } from '../../packages/core/src/tls/kernel-support.js';
import { collectUntil, pin, removeDir, selfSignedCert, SUITES, type SuiteCase } from '../../packages/core/test/tls/fixtures.js';
import { KTLS_TRANSPORTS, rawReplyPayloads, rawRequests, startKmuxTlsServer, statDelta, tamperingClient } from './ktls-peers.js';

type Transport = (typeof KTLS_TRANSPORTS)[number];

const series = process.env.KMUX_KERNEL_SERIES;
const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));
const tls13 = SUITES[0]!;

let running: Server | null = null;
afterEach(async () => {
  await running?.close({ timeoutMs: 0 });
  running = null;
});

async function start(suite: SuiteCase, ktls: 'auto' | 'require' = 'require', transport: Transport = 'userspace'): Promise<number> {
  const { server, port } = await startKmuxTlsServer(key, cert, suite, { ktls, transport, workers: 2 });
  running = server;
  return port;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const giveUp = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A kTLS client of our own, so that the test can put any record on the wire through its kernel. */
async function recordSender(port: number) {
  const connection = await ktlsConnect({ port, servername: 'localhost', ca: cert, ktls: 'require', ...pin(tls13) });
  if (connection.kind !== 'ktls') throw new Error('the client is not on kTLS');
  const socket = connection.socket;
  socket.on('error', () => {});
  const call = async (payload: string): Promise<string> => {
    const reply = collectUntil(socket, (all) => rawReplyPayloads(all).length === 1);
    socket.write(rawRequests('upper', [payload]));
    return rawReplyPayloads(await reply)[0]!;
  };
  const send = (type: number, body: Buffer): void => {
    expect(nativeKtls().sendRecord(socket.fd, body, type)).toBe(body.length);
  };
  return { socket, call, send };
}

/** A TLS 1.3 NewSessionTicket (RFC 8446 §4.6.1): lifetime, age_add, nonce, ticket, no extensions. */
function newSessionTicket(): Buffer {
  const body = Buffer.from('00001c20' + '01020304' + '0100' + '0004deadbeef' + '0000', 'hex');
  return Buffer.concat([Buffer.from([4, 0, 0, body.length]), body]);
}

describe.each(KTLS_TRANSPORTS)(`kernel ${series}: control records on a kmux Server's kTLS connection, transport %s`, (transport) => {
  it('consumes a NewSessionTicket from the peer and goes on serving', async () => {
    const port = await start(tls13, 'require', transport);
    const peer = await recordSender(port);
    expect(await peer.call('before')).toBe('BEFORE');
    peer.send(RecordType.handshake, newSessionTicket());
    expect(await peer.call('after the ticket')).toBe('AFTER THE TICKET');
    expect(running!.stats().tls).toMatchObject({ closed: {}, failed: {} });
    expect(running!.stats().connections.open).toBe(1);
    peer.socket.destroy();
  });

  // Only the test for this kernel is defined: a skipped test fails the suite (run.sh).
  if (ktlsSupport().rekey) {
    it("follows the peer's KeyUpdate and goes on serving, counted", async () => {
      const port = await start(tls13, 'require', transport);
      const peer = await recordSender(port);
      expect(await peer.call('before the update')).toBe('BEFORE THE UPDATE');
      peer.socket.keyUpdate(true);
      expect(await peer.call('after the update')).toBe('AFTER THE UPDATE');
      await until(() => running!.stats().tls!.keyUpdates.tx === 1, 'the server to answer the KeyUpdate');
      expect(running!.stats().tls).toMatchObject({ closed: {}, keyUpdates: { rx: 1, tx: 1 } });
      expect(running!.stats().connectionErrors).toEqual({});
      peer.socket.destroy();
    });
  } else {
    it('closes only the connection whose peer sends a KeyUpdate this kernel cannot follow, counted', async () => {
      const port = await start(tls13, 'require', transport);
      const bystander = new RawClient({ port, tls: { ca: cert, ...pin(tls13) }, ktls: 'require' });
      expect(String(await bystander.call('echo', 'hello'))).toBe('hello');
      const peer = await recordSender(port);
      expect(await peer.call('before the update')).toBe('BEFORE THE UPDATE');
      const closed = once(peer.socket, 'close');
      peer.send(RecordType.handshake, keyUpdateMessage(true));
      await closed;
      await until(() => running!.stats().connections.open === 1, 'the server to close the connection');
      const stats = running!.stats();
      expect(stats.tls).toMatchObject({ closed: { key_update: 1 }, keyUpdates: { refused: 1 } });
      expect(stats.connectionErrors).toEqual({ tls_key_update: 1 });
      expect(String(await bystander.call('echo', 'still here'))).toBe('still here');
      bystander.close();
    });
  }

  it.each([SUITES[0]!, SUITES[3]!])('closes only the connection with a tampered record (EBADMSG), counted, $version $ciphers', async (suite) => {
    const port = await start(suite, 'require', transport);
    const healthy = connectTls({ port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(suite) });
    await once(healthy, 'secureConnect');
    const { socket: victim, armTamper } = tamperingClient(port, cert, suite);
    victim.on('error', () => {});
    await once(victim, 'secureConnect');
    const first = collectUntil(victim, (all) => rawReplyPayloads(all).length === 1);
    victim.write(rawRequests('upper', ['before']));
    expect(rawReplyPayloads(await first)).toEqual(['BEFORE']);

    const before = readTlsStat()!;
    armTamper();
    victim.write(rawRequests('upper', ['tampered']));
    await until(() => running!.stats().connections.open === 1, 'the server to close the tampered connection');
    expect(statDelta(before, readTlsStat()!, 'TlsDecryptError')).toBe(1);
    const stats = running!.stats();
    expect(stats.tls?.closed).toEqual({ bad_record: 1 });
    expect(stats.connectionErrors).toEqual({ tls_bad_record: 1 });
    expect(stats.requests.received).toBe(1);

    const reply = collectUntil(healthy, (all) => rawReplyPayloads(all).length === 1);
    healthy.write(rawRequests('upper', ['still fine']));
    expect(rawReplyPayloads(await reply)).toEqual(['STILL FINE']);
    healthy.destroy();
    victim.destroy();
  });
});

describe(`kernel ${series}: closing a kmux Server on kTLS`, () => {
  it('abandons a handshake in progress at once, instead of after handshakeTimeout', async () => {
    const port = await start(tls13);
    const silent = connect({ host: '127.0.0.1', port });
    silent.on('error', () => {});
    await once(silent, 'connect');
    const closedBySever = once(silent, 'close');
    await until(() => running!.stats().tls?.handshaking === 1, 'the server to start the handshake');
    const started = Date.now();
    await running!.close({ timeoutMs: 0 });
    await closedBySever;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(running!.stats().connectionErrors).toEqual({ shutdown: 1 });
    running = null;
  });
});

describe(`kernel ${series}: a kmux Server when the kernel has lost the negotiated cipher`, () => {
  const moduleFile = fileURLToPath(
    new URL(`./cache/${series}/initramfs-root/lib/modules/${release()}/kernel/crypto/chacha20poly1305.ko`, import.meta.url),
  );
  const chacha = SUITES.find((s) => s.version === 'TLSv1.3' && s.cipher === 'chacha20-poly1305')!;

  /** The server starts while the kernel has ChaCha20-Poly1305, which is then unloaded: TLS_TX fails per connection. */
  async function withoutChacha(ktls: 'auto' | 'require', run: (port: number) => Promise<void>, transport: Transport = 'userspace'): Promise<void> {
    const port = await start(chacha, ktls, transport);
    execFileSync('busybox', ['rmmod', 'chacha20poly1305']);
    try {
      await run(port);
    } finally {
      execFileSync('busybox', ['insmod', moduleFile]);
    }
  }

  it.each(KTLS_TRANSPORTS)("'auto' serves that connection on user-space TLS and counts why, transport %s", async (transport) => {
    await withoutChacha(
      'auto',
      async (port) => {
        const client = new RawClient({ port, tls: { ca: cert, ...pin(chacha) } });
        expect(String(await client.call('upper', 'over user space'))).toBe('OVER USER SPACE');
        client.close();
        expect(running!.stats().tls).toMatchObject({ ktls: true, handoffs: {}, userspace: { ktls_setup: 1 } });
        // native: served by its user-space fallback, counted there.
        if (transport === 'native') expect(running!.stats().kernel).toMatchObject({ userspaceFallbacks: 1 });
      },
      transport,
    );
  });

  it("'require' closes it and counts why", async () => {
    await withoutChacha('require', async (port) => {
      const client = new RawClient({ port, tls: { ca: cert, ...pin(chacha) }, connectAttempts: 1, timeoutMs: 10_000 });
      await expect(client.call('upper', 'x')).rejects.toMatchObject({ kind: 'connection_closed' });
      client.close();
      await until(() => Object.keys(running!.stats().tls!.failed).length > 0, 'the refusal to be counted');
      expect(running!.stats().tls?.failed).toEqual({ 'required:ktls_setup': 1 });
      expect(running!.stats().connectionErrors).toEqual({ ktls_handoff: 1 });
    });
  });
});
