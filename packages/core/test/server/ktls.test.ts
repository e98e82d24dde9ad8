// The Server's and Client's `ktls` option on the host. The host kernel has no kTLS (no
// CONFIG_TLS): TLS must keep working in user space, and the server must say why kTLS is
// off, in its transport report, its stats and its metrics. The kTLS path itself runs in
// the VM (test/kernel/ktls-server.test.ts).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  KtlsHandoffError,
  KtlsUnavailableError,
  RawClient,
  Server,
  describeTransport,
  ktlsSupport,
  planServerTls,
  rawCodec,
  type KtlsSupport,
} from '@kmux/core';
import { cleanup, HANDLERS, rejection, startServer, track } from '../helpers.js';
import { parsePrometheus, sampleValue } from '../stats/prometheus-parse.js';
import { removeDir, selfSignedCert } from '../tls/fixtures.js';

const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));
afterEach(cleanup);

const hostSupport = ktlsSupport();
const noKtls = `this host has kTLS (${hostSupport.reason}); these tests are about a kernel without it`;

describe('ktls option validation', () => {
  const codec = rawCodec({ handler: HANDLERS });

  it('rejects an unknown mode and a kTLS mode without tls', () => {
    expect(() => new Server({ codec, tls: { key, cert }, ktls: 'on' as never })).toThrow(/ktls must be one of off, auto, require, got on/);
    expect(() => new Server({ codec, ktls: 'auto' })).toThrow(/ktls 'auto' needs tls/);
    expect(() => new Server({ codec, ktls: 'require' })).toThrow(RangeError);
    expect(() => new Server({ codec, ktls: 'off' })).not.toThrow();
    expect(() => new RawClient({ port: 1, ktls: 'require' })).toThrow(/ktls 'require' needs tls/);
    expect(() => new RawClient({ port: 1, tls: true, ktls: 'yes' as never })).toThrow(/ktls must be one of/);
  });

  it("decides at listen(): 'require' without kTLS is a typed error with the probe's reason", () => {
    const none: KtlsSupport = { available: false, reason: 'Linux 9.9: setsockopt(SOL_TCP, TCP_ULP, "tls"): ENOENT', ciphers: new Set(), rekey: false };
    const some: KtlsSupport = { available: true, reason: 'Linux 9.9: kTLS with aes-gcm-128', ciphers: new Set(['aes-gcm-128']), rekey: true };
    expect(() => planServerTls('require', none)).toThrow(KtlsUnavailableError);
    expect(() => planServerTls('require', none)).toThrow(/kTLS is required but unavailable: Linux 9.9: .*ENOENT/);
    expect(planServerTls('auto', none)).toEqual({ requested: 'auto', ktls: false, reason: `kTLS unavailable: ${none.reason}` });
    expect(planServerTls('auto', some)).toEqual({ requested: 'auto', ktls: true, reason: some.reason });
    expect(planServerTls('off', some)).toMatchObject({ ktls: false, reason: "kTLS off (ktls: 'off')" });
  });
});

describe.skipIf(hostSupport.available)('TLS on a kernel without kTLS', () => {
  it(`'auto' (the default) serves user-space TLS and reports why kTLS is off — ${noKtls}`, async () => {
    const { server, port } = await startServer({ tls: { key, cert } });
    const report = server.transport!.tls!;
    expect(report).toEqual({ requested: 'auto', ktls: false, reason: `kTLS unavailable: ${hostSupport.reason}` });
    expect(report.reason).toMatch(/TCP_ULP.*ENOENT/);
    expect(describeTransport(server.transport!)).toMatch(/; TLS records in user space: kTLS unavailable: .*ENOENT/);

    for (let i = 0; i < 2; i++) {
      const client = new RawClient({ port, tls: { ca: cert }, ktls: 'auto' });
      expect((await client.call('echo', `over tls ${i}`)).toString()).toBe(`over tls ${i}`);
      // The client falls back the same way, and says so.
      expect(client.tls).toEqual({ ktls: false, reason: `kTLS unavailable: ${hostSupport.reason}` });
      client.close();
    }
    const stats = server.stats();
    expect(stats.tls).toEqual({
      requested: 'auto',
      ktls: false,
      reason: report.reason,
      handoffs: {},
      userspace: { ktls_unavailable: 2 },
      failed: {},
      closed: {},
      keyUpdates: {},
      handshaking: 0,
    });
    // /proc/net/tls_stat exists only with the tls module loaded.
    expect(stats.kernel?.tls).toBeUndefined();

    const exposition = parsePrometheus(server.metrics());
    expect(sampleValue(exposition, 'kmux_tls_ktls', { requested: 'auto', reason: report.reason })).toBe(0);
    expect(sampleValue(exposition, 'kmux_tls_userspace_total', { reason: 'ktls_unavailable' })).toBe(2);
    expect(exposition.types.get('kmux_tls_handoffs_total')).toBe('counter');
    expect(exposition.types.has('kmux_kernel_tls_total')).toBe(false);
  });

  it("'require' fails listen() with KtlsUnavailableError and leaves nothing running", async () => {
    const server = track(new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 1, tls: { key, cert }, ktls: 'require' }));
    const error = await server.listen().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(KtlsUnavailableError);
    expect(error).toMatchObject({ kind: 'transport_unavailable', reason: hostSupport.reason });
    expect(server.transport).toBeNull();
    expect(server.stats().workers.every((w) => !w.live)).toBe(true);
  });

  it("'off' serves user-space TLS and counts each connection under ktls_off", async () => {
    const { server, port } = await startServer({ tls: { key, cert }, ktls: 'off' });
    const client = new RawClient({ port, tls: { ca: cert } });
    expect((await client.call('echo', 'x')).toString()).toBe('x');
    expect(client.tls).toEqual({ ktls: false, reason: "kTLS off (ktls: 'off')" });
    client.close();
    expect(server.stats().tls).toMatchObject({ requested: 'off', ktls: false, userspace: { ktls_off: 1 } });
  });

  it("a client with ktls: 'require' refuses to connect, saying why", async () => {
    const { port } = await startServer({ tls: { key, cert } });
    const client = new RawClient({ port, tls: { ca: cert }, ktls: 'require', connectAttempts: 1 });
    const error = await rejection(client.call('echo', 'x'));
    expect(error.kind).toBe('connection_closed');
    expect(error.cause).toBeInstanceOf(KtlsHandoffError);
    expect(error.cause).toMatchObject({ code: 'ktls_unavailable' });
    client.close();
  });
});
