// TLS 1.3 KeyUpdate on kTLS, on a real kernel, with every TLS 1.3 suite. Linux 7.3 takes the
// next key (a second TLS_RX / TLS_TX): openssl s_client's `k` / `K` against the kmux Server,
// openssl s_server's against the kmux client, and kmux client ↔ kmux Server rekeying both ways
// under load, every reply checked (the Server on the userspace and native transports); the Thrift and protobuf clients start theirs after
// ktlsKeyUpdateAfter. Linux 6.1 and 6.12 refuse it (EBUSY): the requests read before the
// KeyUpdate are still answered, then the connection closes with a clear error, counted.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodeRawRequest, RawClient, type Server } from '@kmux/core';
import { createProtobufClient, loadService } from '@kmux/protobuf';
import { createThriftClient } from '@kmux/thrift';
import { encodeFrame } from '../../packages/core/src/framing/frame-splitter.js';
import { KtlsError } from '../../packages/core/src/tls/errors.js';
import { ktlsConnect } from '../../packages/core/src/tls/handoff.js';
import { probeKtlsSupport } from '../../packages/core/src/tls/kernel-support.js';
import type { KtlsSocket } from '../../packages/core/src/tls/ktls-socket.js';
import { readTlsStat } from '../../packages/core/src/tls/tls-stat.js';
import { cleanup, gateTag, release, started, until } from '../../packages/core/test/helpers.js';
import { pin, removeDir, selfSignedCert, SUITES } from '../../packages/core/test/tls/fixtures.js';
import { Catalog, startCatalogServer } from '../interop/catalog.js';
import { PRICING_BUNDLE, PRICING_SERVICE, startPricingServer, type PricingMethods } from '../interop/protobuf-pricing.js';
import { KTLS_TRANSPORTS, opensslServer, opensslSession, rawReplyPayloads, startKmuxTlsServer, statDelta } from './ktls-peers.js';

const series = process.env.KMUX_KERNEL_SERIES ?? '';
const { key, cert, dir } = selfSignedCert();
const caFile = join(dir, 'cert.pem');
const keyFile = join(dir, 'key.pem');
afterAll(() => removeDir(dir));
afterEach(cleanup);

const support = probeKtlsSupport();
/** Measured: 6.1 and 6.12 answer a second TLS_TX / TLS_RX with EBUSY; 7.3 takes it. */
const REKEY_SERIES = ['7.3'];
const TLS13 = SUITES.filter((s) => s.version === 'TLSv1.3');

/** Raw-codec requests with ids from `firstId`. */
function requests(method: string, payloads: readonly string[], firstId: number): Buffer {
  return Buffer.concat(payloads.map((p, i) => encodeFrame(encodeRawRequest(firstId + i, method, Buffer.from(p)))));
}

/** Resolves with the error the socket was destroyed with (null if it closed cleanly). */
function closedWith(socket: KtlsSocket): Promise<Error | null> {
  return new Promise((resolve) => {
    let error: Error | null = null;
    socket.on('error', (e: Error) => (error = e));
    socket.once('close', () => resolve(error));
  });
}

describe(`kernel ${series}: kmux probe`, () => {
  it('says whether this kernel can rekey kTLS, from a second TLS_TX tried for real', () => {
    expect(support.rekey, support.reason).toBe(REKEY_SERIES.includes(series));
    expect(support.reason).toMatch(
      support.rekey ? /TLS 1\.3 KeyUpdate rekeys in the kernel/ : /no TLS 1\.3 rekey \(a second setsockopt\(SOL_TLS, TLS_TX\): EBUSY/,
    );
  });
});

describe.each(KTLS_TRANSPORTS)(`kernel ${series}: transport %s`, (transport) => {
  describe.each(TLS13)(`openssl s_client sends KeyUpdates to the kmux Server, $ciphers`, (suite) => {
    const title = support.rekey
      ? 'follows K (answering with its own KeyUpdate) and k amid 20 requests in flight, and serves on under the new keys'
      : 'answers the 20 requests read before the KeyUpdate, then closes with a clear error, counted';
    it(title, async () => {
      const { server, port } = await startKmuxTlsServer(key, cert, suite, { workers: 2, transport });
      const tls = () => server.stats().tls!;
      try {
        const before = readTlsStat()!;
        const session = opensslSession(port, caFile, suite);
        const tags = Array.from({ length: 20 }, () => gateTag('rekey'));
        const running = Promise.all(tags.map(started));
        session.child.stdin.write(requests('wait', tags, 1));
        await running;
        // All 20 are read and in the workers: the KeyUpdate comes after them.
        session.child.stdin.write('K\n');
        const released = tags.map((t) => `released ${t}`);
        if (!support.rekey) {
          await until(() => tls().keyUpdates.refused === 1, 'the server to meet the KeyUpdate');
          expect(tls().closed).toEqual({});
          for (const tag of tags) release(tag);
          await session.exited;
          expect(rawReplyPayloads(session.stdout())).toEqual(released);
          await until(() => tls().closed.key_update === 1, 'the connection to close');
          expect(server.stats().connectionErrors).toEqual({ tls_key_update: 1 });
          expect(tls().keyUpdates).toEqual({ refused: 1 });
          return;
        }
        await until(() => tls().keyUpdates.rx === 1 && tls().keyUpdates.tx === 1, 'the server to follow K and answer it');
        for (const tag of tags) release(tag);
        await until(() => session.stdout().length > 0 && rawReplyPayloads(session.stdout()).length === 20, 'the 20 replies');
        expect(rawReplyPayloads(session.stdout())).toEqual(released);
        session.child.stdin.write('k\n');
        await until(() => tls().keyUpdates.rx === 2, 'the server to follow k');
        const later = Array.from({ length: 30 }, (_, i) => `after the updates ${i}`);
        session.child.stdin.write(requests('upper', later, 21));
        await until(() => rawReplyPayloads(session.stdout()).length === 50, 'the 30 later replies');
        expect(rawReplyPayloads(session.stdout())).toEqual([...released, ...later.map((p) => p.toUpperCase())]);
        expect(tls().keyUpdates).toEqual({ rx: 2, tx: 1 });
        const after = readTlsStat()!;
        expect(statDelta(before, after, 'TlsRxRekeyOk')).toBe(2);
        expect(statDelta(before, after, 'TlsTxRekeyOk')).toBe(1);
        expect(statDelta(before, after, 'TlsRxRekeyError') + statDelta(before, after, 'TlsTxRekeyError')).toBe(0);
        session.child.stdin.end();
        await session.exited;
        expect(tls().closed.key_update).toBeUndefined();
        expect(server.stats().connectionErrors).toEqual({});
      } finally {
        await server.close();
      }
    });
  });
});

describe.each(TLS13)(`kernel ${series}: the kmux client and openssl s_server's KeyUpdates, $ciphers`, (suite) => {
  const title = support.rekey
    ? "follows K and k, starts its own, and data goes both ways under each new key"
    : 'cannot start one, and closes with a clear error when the server sends one';
  it(title, async () => {
    const peer = await opensslServer(caFile, keyFile, suite);
    try {
      const connection = await ktlsConnect({ port: peer.port, servername: 'localhost', ca: cert, ktls: 'require', ...pin(suite) });
      if (connection.kind !== 'ktls') throw new Error(`the client is on ${connection.kind} TLS: ${connection.reason}`);
      const { socket } = connection;
      const updates: string[] = [];
      socket.on('keyUpdate', (direction: string) => updates.push(direction));
      let got = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
      const closed = closedWith(socket);
      const toServer = async (line: string): Promise<void> => {
        socket.write(`${line}\n`);
        await until(() => peer.received().includes(`${line}\n`), `s_server to get "${line}"`);
      };
      const fromServer = async (line: string): Promise<void> => {
        peer.child.stdin.write(`${line}\n`);
        await until(() => got.includes(`${line}\n`), `the client to get "${line}"`);
      };
      await toServer('0 before');
      await fromServer('1 before');
      if (!support.rekey) {
        expect(() => socket.keyUpdate()).toThrow(/kmux kept no traffic secrets: kTLS takes a second TLS_RX\/TLS_TX from Linux 6\.14/);
        peer.child.stdin.write('K\n');
        const error = await closed;
        expect(error).toBeInstanceOf(KtlsError);
        expect(error).toMatchObject({ reason: 'key_update', code: 'ERR_KTLS_KEY_UPDATE' });
        expect(socket.closeReason).toBe('key_update');
        return;
      }
      peer.child.stdin.write('K\n');
      await until(() => updates.join() === 'rx,tx', 'the client to follow K and answer it');
      await toServer('2 after K');
      await fromServer('3 after K');
      peer.child.stdin.write('k\n');
      await until(() => updates.join() === 'rx,tx,rx', 'the client to follow k');
      await fromServer('4 after k');
      // Our own, asking s_server for one in return, which OpenSSL sends before its next write.
      socket.keyUpdate(true);
      await toServer('5 after ours');
      await fromServer('6 after ours');
      expect(updates.join()).toBe('rx,tx,rx,tx,rx');
      await toServer('7 after both');
      socket.end();
      expect(await closed).toBeNull();
    } finally {
      peer.child.kill();
    }
  });
});

describe.each(KTLS_TRANSPORTS)(`kernel ${series}: transport %s`, (transport) => {
  describe.each(TLS13)(`kmux client ↔ kmux Server, both rekeying under load, $ciphers`, (suite) => {
    const title = support.rekey
      ? '400 pipelined calls of 1 B–20 KB: every reply intact across ten or more KeyUpdates each way, counted'
      : '400 pipelined calls of 1 B–20 KB: the limits start no KeyUpdate this kernel cannot take';
    it(title, async () => {
      const { server, port } = await startKmuxTlsServer(key, cert, suite, { workers: 2, transport, ktlsKeyUpdateAfter: { records: 10 } });
      const client = new RawClient({
        port,
        tls: { ca: cert, servername: 'localhost', ...pin(suite) },
        ktls: 'require',
        ktlsKeyUpdateAfter: { records: 15 },
      });
      try {
        const before = readTlsStat()!;
        const payloads = Array.from({ length: 400 }, (_, i) => randomBytes(i % 10 === 0 ? 17_000 + i : 1 + ((i * 37) % 3000)));
        let next = 0;
        let intact = 0;
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (next < payloads.length) {
              const payload = payloads[next++]!;
              if ((await client.call('echo', payload)).equals(payload)) intact++;
            }
          }),
        );
        expect(intact).toBe(payloads.length);
        const { keyUpdates } = server.stats().tls!;
        const after = readTlsStat()!;
        if (!support.rekey) {
          expect(keyUpdates).toEqual({});
          expect(statDelta(before, after, 'TlsDecryptError')).toBe(0);
          return;
        }
        expect(keyUpdates.tx).toBeGreaterThanOrEqual(10);
        expect(keyUpdates.rx).toBeGreaterThanOrEqual(10);
        expect(keyUpdates.refused).toBeUndefined();
        // The kernel's own count covers both ends (one process): at least the server's share.
        expect(statDelta(before, after, 'TlsTxRekeyOk')).toBeGreaterThanOrEqual(keyUpdates.tx! + 1);
        expect(statDelta(before, after, 'TlsRxRekeyOk')).toBeGreaterThanOrEqual(keyUpdates.rx! + 1);
        expect(statDelta(before, after, 'TlsRxRekeyError') + statDelta(before, after, 'TlsTxRekeyError')).toBe(0);
        expect(statDelta(before, after, 'TlsDecryptError')).toBe(0);
        expect(server.stats().connectionErrors).toEqual({});
      } finally {
        client.close();
        await server.close();
      }
    });
  });
});

describe.each(KTLS_TRANSPORTS)(`kernel ${series}: transport %s, the Server's own ktlsKeyUpdateAfter`, (transport) => {
  const title = support.rekey
    ? 'a KeyUpdate every 5 records, asking the client for one back, while a client that starts none calls on'
    : 'none started where the kernel cannot take it';
  it(title, async () => {
    const { server, port } = await startKmuxTlsServer(key, cert, TLS13[0]!, { workers: 2, transport, ktlsKeyUpdateAfter: { records: 5 } });
    const client = new RawClient({ port, tls: { ca: cert, servername: 'localhost', ...pin(TLS13[0]!) }, ktls: 'require' });
    try {
      // One reply a send, so about 16 KeyUpdates.
      for (let i = 0; i < 80; i++) {
        const payload = randomBytes(1 + i * 50);
        expect((await client.call('echo', payload)).equals(payload)).toBe(true);
      }
      const { keyUpdates } = server.stats().tls!;
      if (!support.rekey) {
        expect(keyUpdates).toEqual({});
        return;
      }
      expect(keyUpdates.tx).toBeGreaterThanOrEqual(10);
      expect(keyUpdates.rx).toBeGreaterThanOrEqual(5);
      expect(server.stats().connectionErrors).toEqual({});
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe(`kernel ${series}: the Thrift and protobuf clients' ktlsKeyUpdateAfter`, () => {
  const tlsClient = { tls: { ca: cert, servername: 'localhost' }, ktls: 'require', ktlsKeyUpdateAfter: { records: 5 } } as const;
  /** The client's KeyUpdates as the server followed them, after 60 calls of a record or more each. */
  async function keyUpdatesAfter(server: Server, calls: () => Promise<void>): Promise<Record<string, number>> {
    for (let i = 0; i < 60; i++) await calls();
    return server.stats().tls!.keyUpdates;
  }
  const expectRekeyed = (keyUpdates: Record<string, number>): void => {
    if (!support.rekey) expect(keyUpdates).toEqual({});
    else expect(keyUpdates.rx).toBeGreaterThanOrEqual(10);
  };

  it(support.rekey ? 'createThriftClient: a KeyUpdate every 5 records, followed by the server' : 'createThriftClient: none started where the kernel cannot take it', async () => {
    const { server, port } = await startCatalogServer('binary', { tls: { key, cert }, ktls: 'require' });
    const client = createThriftClient(Catalog as typeof import('../../examples/thrift/gen-nodejs/Catalog.js'), { port, ...tlsClient });
    try {
      const payload = Buffer.from('rekeyed thrift');
      expectRekeyed(await keyUpdatesAfter(server, async () => expect(await client.echo(payload)).toEqual(payload)));
    } finally {
      client.close();
      await server.close();
    }
  });

  it(support.rekey ? 'createProtobufClient: a KeyUpdate every 5 records, followed by the server' : 'createProtobufClient: none started where the kernel cannot take it', async () => {
    const { server, port } = await startPricingServer(PRICING_BUNDLE, { tls: { key, cert }, ktls: 'require' });
    const client = createProtobufClient<PricingMethods>(await loadService(PRICING_BUNDLE, PRICING_SERVICE), { port, ...tlsClient });
    try {
      const data = Buffer.from('rekeyed protobuf');
      expectRekeyed(await keyUpdatesAfter(server, async () => expect(Buffer.from((await client.echo({ data })).data)).toEqual(data)));
    } finally {
      client.close();
      await server.close();
    }
  });
});
