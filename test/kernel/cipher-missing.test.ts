// The kTLS ULP can load while a cipher's crypto is missing; the probe must
// report that per cipher rather than trust the ULP. chacha20poly1305.ko is
// unloaded for one probe and loaded again from the initramfs tree that
// vm/build-guest.sh left in the cache (uncompressed, visible through 9p).
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { probeKernel, type KernelProbe } from '../../packages/native/src/index.js';

const series = process.env.KMUX_KERNEL_SERIES;
const moduleFile = fileURLToPath(
  new URL(`./cache/${series}/initramfs-root/lib/modules/${release()}/kernel/crypto/chacha20poly1305.ko`, import.meta.url),
);

function probeWithoutChacha(): KernelProbe {
  execFileSync('busybox', ['rmmod', 'chacha20poly1305']);
  try {
    return probeKernel();
  } finally {
    execFileSync('busybox', ['insmod', moduleFile]);
  }
}

describe(`kernel ${series}: a missing kTLS cipher`, () => {
  it('is reported for that cipher, with the errno, while the ULP and the other ciphers work', () => {
    const probe = probeWithoutChacha();
    expect(probe.ktls.ulp.ok, probe.ktls.ulp.reason).toBe(true);
    const { tx, rx } = probe.ktls.ciphers['chacha20-poly1305'];
    expect(tx).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(tx.reason).toContain('TLS_TX');
    expect(rx).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(rx.reason).toContain('TLS_RX');
    expect(probe.ktls.ciphers['aes-gcm-128'].tx.ok).toBe(true);
    expect(probe.ktls.ciphers['aes-gcm-256'].rx.ok).toBe(true);
  });

  it('is reported present again once the module is back', () => {
    const { tx, rx } = probeKernel().ktls.ciphers['chacha20-poly1305'];
    expect(tx.ok, tx.reason).toBe(true);
    expect(rx.ok, rx.reason).toBe(true);
  });
});
