import { describe, expect, it } from 'vitest';
import { EXPLICIT_ONLY, TRANSPORT_PREFERENCE, TransportUnavailableError, describeTransport, selectTransport } from '@kmux/core';

describe('selectTransport on this host (no AF_KCM; root, so sockmap works)', () => {
  it('rejects an explicit kcm with TransportUnavailableError and the reason', async () => {
    const error = await selectTransport('kcm').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportUnavailableError);
    expect(error).toMatchObject({ kind: 'transport_unavailable' });
    expect((error as Error).message).toMatch(/^transport 'kcm' is unavailable: .*(AF_KCM|native addon)/);
  });

  it('gives sockmap, native and userspace when asked for them', async () => {
    expect(await selectTransport('sockmap')).toEqual({ name: 'sockmap', requested: 'sockmap', notTaken: {} });
    expect(await selectTransport('native')).toEqual({ name: 'native', requested: 'native', notTaken: {} });
    expect(await selectTransport('userspace')).toEqual({ name: 'userspace', requested: 'userspace', notTaken: {} });
  });

  it('takes userspace under auto: sockmap and native are explicit-only, and each reason is given', async () => {
    const report = await selectTransport('auto');
    expect(report.name).toBe('userspace');
    expect(Object.keys(report.notTaken)).toEqual(['kcm', 'sockmap', 'native']);
    expect(report.notTaken.kcm).toMatch(/AF_KCM|native addon/);
    expect(report.notTaken.sockmap).toBe(EXPLICIT_ONLY.sockmap);
    expect(report.notTaken.native).toBe(EXPLICIT_ONLY.native);
  });

  it('lets constraints rule out a transport: explicit fails with the reason, auto passes it over', async () => {
    const constraints = { sockmap: 'TLS needs user-space framing until kTLS lands' };
    await expect(selectTransport('sockmap', constraints)).rejects.toThrow(
      "transport 'sockmap' is unavailable: TLS needs user-space framing until kTLS lands",
    );
    expect((await selectTransport('auto', constraints)).notTaken.sockmap).toBe(constraints.sockmap);
  });
});

describe('describeTransport', () => {
  it('names the transport and the reasons for the ones not taken', () => {
    expect(describeTransport({ name: 'userspace', requested: 'userspace', notTaken: {} })).toBe('userspace');
    expect(describeTransport({ name: 'sockmap', requested: 'auto', notTaken: { kcm: 'no AF_KCM' } })).toBe('sockmap (kcm: no AF_KCM)');
  });

  it('prefers kcm, then sockmap, then native, then userspace', () => {
    expect(TRANSPORT_PREFERENCE).toEqual(['kcm', 'sockmap', 'native', 'userspace']);
  });
});
