// The kmux Server with kTLS on a real kernel, for every suite kmux hands over (TLS 1.3 and
// 1.2 × AES-GCM-128, AES-GCM-256, ChaCha20-Poly1305): framed requests from Node's tls
// client, from a kTLS kmux Client, and from `openssl s_client`, with /proc/net/tls_stat
// showing that the kernel holds the record layer of each connection. Also: kmux's kTLS
// Client against `openssl s_server`.
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, readTlsStat, type Server } from '@kmux/core';
import { collectUntil, pin, removeDir, selfSignedCert, SUITES } from '../../packages/core/test/tls/fixtures.js';
import {
  opensslClient,
  KTLS_TRANSPORTS,
  opensslServer,
  rawReplyPayloads,
  rawRequests,
  startKmuxTlsServer,
  statDelta,
  upperReplies,
} from './ktls-peers.js';

const series = process.env.KMUX_KERNEL_SERIES;
const { key, cert, dir } = selfSignedCert();
const caFile = join(dir, 'ca.pem');
const keyFile = join(dir, 'key.pem');
writeFileSync(caFile, cert);
writeFileSync(keyFile, key);
afterAll(() => removeDir(dir));

const payloads = ['first request', 'a second one', 'x'.repeat(20_000)];

async function until(condition: () => boolean, what: string): Promise<void> {
  const giveUp = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(KTLS_TRANSPORTS)(`kernel ${series}: kmux Server on kTLS, transport %s`, (transport) => {
  describe.each(SUITES)('$version $ciphers', (suite) => {
    const handoff = `${suite.version} ${suite.cipher}`;
    let server: Server;
    let port: number;
    beforeAll(async () => {
      ({ server, port } = await startKmuxTlsServer(key, cert, suite, { transport, workers: 2 }));
      expect(server.transport).toMatchObject({ name: transport, tls: { requested: 'require', ktls: true } });
    });
    afterAll(() => server.close({ timeoutMs: 0 }));

    it("serves Node's tls client; the kernel holds both directions of the server's socket", async () => {
      const before = readTlsStat()!;
      const client = connectTls({ port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(suite) });
      await once(client, 'secureConnect');
      const received = collectUntil(client, (all) => rawReplyPayloads(all).length === payloads.length);
      client.write(rawRequests('echo', payloads));
      expect(rawReplyPayloads(await received)).toEqual(payloads);
      const during = readTlsStat()!;
      expect(statDelta(before, during, 'TlsCurrTxSw'), JSON.stringify(during)).toBe(1);
      expect(statDelta(before, during, 'TlsCurrRxSw'), JSON.stringify(during)).toBe(1);
      // Our close_notify is answered with the server's, and the connection is gone from the kernel.
      const ended = once(client, 'end');
      client.end();
      await ended;
      await until(() => server.stats().connections.open === 0, 'the server to close the connection');
      const after = readTlsStat()!;
      expect(statDelta(before, after, 'TlsTxSw')).toBe(1);
      expect(statDelta(before, after, 'TlsRxSw')).toBe(1);
      expect(statDelta(before, after, 'TlsCurrTxSw')).toBe(0);
      expect(statDelta(before, after, 'TlsDecryptError')).toBe(0);
      const stats = server.stats();
      expect(stats.tls).toMatchObject({ ktls: true, handoffs: { [handoff]: 1 }, userspace: {}, failed: {}, closed: { close_notify: 1 } });
      expect(stats.kernel?.tls).toMatchObject({ TlsTxSw: after.TlsTxSw });
      client.destroy();
    });

    it('serves a kmux Client on kTLS: both ends in the kernel', async () => {
      const before = readTlsStat()!;
      const client = new RawClient({ port, tls: { ca: cert, ...pin(suite) }, ktls: 'require' });
      const replies = await Promise.all(payloads.map((p) => client.call('upper', p)));
      expect(replies.map(String)).toEqual(payloads.map((p) => p.toUpperCase()));
      expect(client.tls).toMatchObject({ ktls: true, info: { version: suite.version, cipher: suite.cipher } });
      const during = readTlsStat()!;
      expect(statDelta(before, during, 'TlsCurrTxSw')).toBe(2);
      expect(statDelta(before, during, 'TlsCurrRxSw')).toBe(2);
      client.close();
      await until(() => server.stats().connections.open === 0, 'the server to see the client go');
      expect(server.stats().tls?.handoffs).toEqual({ [handoff]: 2 });
    });

    it('serves openssl s_client; close() ends the connection with close_notify, which s_client answers', async () => {
      const before = readTlsStat()!;
      const answered = (server.stats().requests.outcomes.ok ?? 0) + payloads.length;
      const finished = opensslClient(port, caFile, suite, rawRequests('upper', payloads));
      await until(() => server.stats().requests.outcomes.ok === answered, 'the requests of s_client');
      await server.close({ timeoutMs: 5_000 });
      const client = await finished;
      expect(client.code, client.stderr).toBe(0);
      expect(rawReplyPayloads(client.stdout)).toEqual(payloads.map((p) => p.toUpperCase()));
      const after = readTlsStat()!;
      expect(statDelta(before, after, 'TlsTxSw')).toBe(1);
      expect(statDelta(before, after, 'TlsRxSw')).toBe(1);
      const { handoffs, closed } = server.stats().tls!;
      expect(handoffs).toEqual({ [handoff]: 3 });
      // native: the server's close sends close_notify from the I/O thread and lets go at once
      // ('local'); user space reads s_client's answering close_notify first.
      if (transport === 'native') expect(closed).toEqual({ close_notify: 1, eof: 1, local: 1 });
      else expect(closed).toMatchObject({ close_notify: 2 });
    });
  });
});

describe.each(SUITES)(`kernel ${series}: kmux kTLS Client against openssl s_server, $version $ciphers`, (suite) => {
  it('sends framed requests and reads framed replies, consuming the server’s session tickets', async () => {
    const peer = await opensslServer(caFile, keyFile, suite);
    const before = readTlsStat()!;
    const client = new RawClient({ port: peer.port, tls: { ca: cert, ...pin(suite) }, ktls: 'require', timeoutMs: 60_000 });
    try {
      const calls = payloads.map((p) => client.call('upper', p));
      await until(() => upperReplies(peer.received()).requests.length === payloads.length, 's_server to print the requests');
      const { requests, replies } = upperReplies(peer.received());
      expect(requests).toEqual(payloads.map((p) => `upper ${p}`));
      peer.child.stdin.write(replies);
      expect((await Promise.all(calls)).map(String)).toEqual(payloads.map((p) => p.toUpperCase()));
      expect(client.tls).toMatchObject({ ktls: true, info: { version: suite.version, cipher: suite.cipher } });
      const during = readTlsStat()!;
      expect(statDelta(before, during, 'TlsCurrTxSw')).toBe(1);
      expect(statDelta(before, during, 'TlsCurrRxSw')).toBe(1);
    } finally {
      client.close();
      peer.child.kill();
    }
  });
});
