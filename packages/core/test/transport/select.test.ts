import { describe, expect, it } from 'vitest';
import { TRANSPORT_PREFERENCE, TransportUnavailableError, describeTransport, selectTransport } from '@kmux/core';

describe('selectTransport on this host (no AF_KCM, no kmux kernel transports yet)', () => {
  it('rejects an explicit kcm with TransportUnavailableError and the reason', async () => {
    const error = await selectTransport('kcm').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportUnavailableError);
    expect(error).toMatchObject({ kind: 'transport_unavailable' });
    expect((error as Error).message).toMatch(/^transport 'kcm' is unavailable: .*(AF_KCM|native addon)/);
  });

  it('rejects an explicit sockmap rather than falling back', async () => {
    await expect(selectTransport('sockmap')).rejects.toBeInstanceOf(TransportUnavailableError);
  });

  it('gives userspace when asked for it', async () => {
    expect(await selectTransport('userspace')).toEqual({ name: 'userspace', requested: 'userspace', notTaken: {} });
  });

  it('falls to userspace under auto, with a reason for each better transport', async () => {
    const report = await selectTransport('auto');
    expect(report.name).toBe('userspace');
    expect(Object.keys(report.notTaken)).toEqual(['kcm', 'sockmap']);
    expect(report.notTaken.kcm).toMatch(/AF_KCM|native addon/);
  });
});

describe('describeTransport', () => {
  it('names the transport and the reasons for the ones not taken', () => {
    expect(describeTransport({ name: 'userspace', requested: 'userspace', notTaken: {} })).toBe('userspace');
    expect(describeTransport({ name: 'sockmap', requested: 'auto', notTaken: { kcm: 'no AF_KCM' } })).toBe('sockmap (kcm: no AF_KCM)');
  });

  it('prefers kcm, then sockmap, then userspace', () => {
    expect(TRANSPORT_PREFERENCE).toEqual(['kcm', 'sockmap', 'userspace']);
  });
});
