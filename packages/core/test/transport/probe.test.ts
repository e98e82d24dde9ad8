import { describe, expect, it } from 'vitest';
import type { KernelProbe, SyscallCheck } from '@kmux/native';
import { probeTransports, transportsFrom } from '../../src/transport/probe.js';

const ok = (call: string): SyscallCheck => ({ ok: true, errno: 0, code: null, reason: `${call}: ok` });
const failed = (call: string, code: string, errno: number): SyscallCheck => ({
  ok: false,
  errno,
  code,
  reason: `${call}: ${code} (…)`,
});

/** A kernel with everything kmux can use. */
function fullKernel(): KernelProbe {
  const cipher = { tx: ok('setsockopt(SOL_TLS, TLS_TX)'), rx: ok('setsockopt(SOL_TLS, TLS_RX)') };
  return {
    release: '6.12.0-test',
    kcm: ok('socket(AF_KCM)'),
    kcmAttach: ok('ioctl(SIOCKCMATTACH)'),
    ktls: { ulp: ok('setsockopt(TCP_ULP)'), ciphers: { 'aes-gcm-128': cipher, 'aes-gcm-256': cipher, 'chacha20-poly1305': cipher }, rekey: ok('a second setsockopt(SOL_TLS, TLS_TX)') },
    bpf: ok('bpf(BPF_PROG_LOAD)'),
    sockmap: { map: ok('bpf(BPF_MAP_CREATE)'), streamParser: ok('bpf(BPF_PROG_ATTACH)'), insertTcp: ok('bpf(BPF_MAP_UPDATE_ELEM)') },
    capabilities: { query: ok('capget'), bpf: true, netAdmin: true },
  };
}

describe('transportsFrom', () => {
  it('makes KCM and sockmap available when the kernel supports them', () => {
    const probe = transportsFrom({ loaded: true, kernel: fullKernel() });
    for (const name of ['kcm', 'sockmap'] as const) {
      expect(probe[name]).toMatchObject({ available: true, kernel: { supported: true } });
    }
    expect(probe.kcm.reason).toContain('supports AF_KCM');
    expect(probe.sockmap.reason).toContain('supports sockmap');
    expect(probe.native).toMatchObject({ available: true });
    expect(probe.userspace).toMatchObject({ available: true });
  });

  it('gives the failing call and errno when the kernel lacks a feature', () => {
    const kernel = fullKernel();
    kernel.kcm = failed('socket(AF_KCM)', 'EAFNOSUPPORT', 97);
    kernel.sockmap.insertTcp = failed('bpf(BPF_MAP_UPDATE_ELEM)', 'EPERM', 1);
    const probe = transportsFrom({ loaded: true, kernel });
    expect(probe.kcm).toMatchObject({ available: false, kernel: { supported: false } });
    expect(probe.kcm.reason).toContain('socket(AF_KCM): EAFNOSUPPORT');
    expect(probe.sockmap.reason).toContain('bpf(BPF_MAP_UPDATE_ELEM): EPERM');
  });

  it('needs a TCP socket attached to KCM, which an LSM may refuse', () => {
    const kernel = fullKernel();
    kernel.kcmAttach = failed('ioctl(SIOCKCMATTACH)', 'EACCES', 13);
    const { kcm } = transportsFrom({ loaded: true, kernel });
    expect(kcm).toMatchObject({ available: false, kernel: { supported: false } });
    expect(kcm.reason).toBe('AF_KCM exists but a TCP socket cannot be attached: ioctl(SIOCKCMATTACH): EACCES (…)');
  });

  it('falls back to user space with the reason when the addon is missing', () => {
    const probe = transportsFrom({ loaded: false, reason: 'the addon did not build' });
    expect(probe.kcm).toMatchObject({ available: false, reason: 'native addon not loaded: the addon did not build' });
    expect(probe.sockmap.reason).toBe('native addon not loaded: the addon did not build');
    expect(probe.native).toMatchObject({ available: false, reason: 'native addon not loaded: the addon did not build' });
    expect(probe.userspace.available).toBe(true);
    expect(probe.kernel).toBeNull();
    expect(probe.addon).toEqual({ loaded: false, reason: 'the addon did not build' });
  });
});

describe('probeTransports on this host', () => {
  it('loads the addon and agrees with its kernel probe', async () => {
    const probe = await probeTransports();
    expect(probe.addon).toEqual({ loaded: true });
    expect(probe.native.available).toBe(true);
    expect(probe.kcm.kernel.supported).toBe(probe.kernel!.kcm.ok && probe.kernel!.kcmAttach.ok);
    expect(probe.userspace.available).toBe(true);
    // On a kernel without AF_KCM the reason is the errno of socket(AF_KCM).
    if (!probe.kernel!.kcm.ok) expect(probe.kcm.reason).toContain(probe.kernel!.kcm.code!);
  });
});
