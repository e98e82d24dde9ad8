// The kernel probe on a kernel that has everything kmux can use: Debian's 6.1
// and 6.12 with kcm.ko and tls.ko loaded (run.sh boots them).
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadNative, probeKernel, type KernelProbe } from '../../packages/native/src/index.js';
import { probeTransports } from '../../packages/core/src/transport/probe.js';

const series = process.env.KMUX_KERNEL_SERIES;
let probe: KernelProbe;

beforeAll(() => {
  const native = loadNative();
  if (!native.ok) throw new Error(`@kmux/native did not load in the VM: ${native.reason}`);
  probe = probeKernel();
  console.log(`### kernel suite running on ${probe.release} (series ${series})`);
});

describe(`kernel ${series}: probe`, () => {
  it('runs on the kernel series run.sh booted', () => {
    expect(series, 'KMUX_KERNEL_SERIES is set by test/kernel/run.sh').toBeTruthy();
    expect(probe.release.startsWith(`${series}.`), probe.release).toBe(true);
  });

  it('finds AF_KCM and attaches a TCP socket to it with a BPF parser', () => {
    expect(probe.kcm.ok, probe.kcm.reason).toBe(true);
    expect(probe.kcmAttach.ok, probe.kcmAttach.reason).toBe(true);
  });

  it('finds kTLS with AES-GCM-128, AES-GCM-256 and ChaCha20-Poly1305 in both directions', () => {
    expect(probe.ktls.ulp.ok, probe.ktls.ulp.reason).toBe(true);
    for (const [cipher, { tx, rx }] of Object.entries(probe.ktls.ciphers)) {
      expect(tx.ok, `${cipher} TX: ${tx.reason}`).toBe(true);
      expect(rx.ok, `${cipher} RX: ${rx.reason}`).toBe(true);
    }
    expect(Object.keys(probe.ktls.ciphers).sort()).toEqual(['aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305']);
  });

  it('loads BPF programs and sets up sockmap with a stream parser', () => {
    expect(probe.bpf.ok, probe.bpf.reason).toBe(true);
    for (const [step, check] of Object.entries(probe.sockmap)) expect(check.ok, `${step}: ${check.reason}`).toBe(true);
    expect(probe.capabilities).toMatchObject({ bpf: true, netAdmin: true });
  });

  it('loads the addon and probes in a worker thread', async () => {
    const report = await new Promise<{ threadId: number; load: { ok: boolean }; probe: KernelProbe }>((resolve, reject) => {
      const worker = new Worker(new URL('./fixtures/probe-in-worker.mjs', import.meta.url));
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
    });
    expect(report.load).toEqual({ ok: true });
    expect(report.threadId).toBeGreaterThan(0);
    expect(report.probe.kcm.ok, report.probe.kcm.reason).toBe(true);
    expect(report.probe.ktls.ciphers['aes-gcm-128'].tx.ok).toBe(true);
  });

  it('tells the transport selector that the kernel supports KCM and sockmap', async () => {
    const transports = await probeTransports();
    expect(transports.kcm.kernel.supported, transports.kcm.reason).toBe(true);
    expect(transports.sockmap.kernel.supported, transports.sockmap.reason).toBe(true);
    expect(transports.kcm.available).toBe(true);
    expect(transports.sockmap.available).toBe(true);
  });
});
