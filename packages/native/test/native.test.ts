import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadNative, probeKernel, type KernelProbe, type SyscallCheck } from '../src/index.js';
import { procCapabilities, pythonErrno, unprivilegedBpfDisabled } from './oracle.js';

const workerScript = new URL('./fixtures/probe-in-worker.mjs', import.meta.url);

interface WorkerReport {
  threadId: number;
  load: { ok: true } | { ok: false; reason: string };
  probe: KernelProbe | null;
}

function probeInWorker(): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerScript);
    let report: WorkerReport | undefined;
    worker.once('message', (m: WorkerReport) => (report = m));
    worker.once('error', reject);
    worker.once('exit', (code) =>
      code === 0 && report ? resolve(report) : reject(new Error(`worker exited with ${code}, report: ${!!report}`)),
    );
  });
}

function allChecks(probe: KernelProbe): SyscallCheck[] {
  const ciphers = Object.values(probe.ktls.ciphers).flatMap((c) => [c.tx, c.rx]);
  return [probe.kcm, probe.kcmAttach, probe.ktls.ulp, ...ciphers, probe.bpf, ...Object.values(probe.sockmap), probe.capabilities.query];
}

describe('@kmux/native loading', () => {
  it('loads in the main thread', () => {
    const native = loadNative();
    expect(native.ok ? 'loaded' : native.reason).toBe('loaded');
  });

  it('loads and probes in worker threads, two at once, and the workers exit cleanly', async () => {
    const [a, b] = await Promise.all([probeInWorker(), probeInWorker()]);
    for (const report of [a, b]) {
      expect(report.load).toEqual({ ok: true });
      expect(report.threadId).toBeGreaterThan(0);
      expect(report.probe?.release).toBe(probeKernel().release);
    }
    expect(a.threadId).not.toBe(b.threadId);
  });

  it('reports why when the addon did not build', async () => {
    // A copy of the package whose build left only the error file behind.
    const pkg = fileURLToPath(new URL('..', import.meta.url));
    const copy = mkdtempSync(join(tmpdir(), 'kmux-native-'));
    try {
      cpSync(join(pkg, 'dist'), join(copy, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') });
      mkdirSync(join(copy, 'build'));
      writeFileSync(join(copy, 'build', 'addon-build-error.txt'), 'node-gyp rebuild exited with 1\nfatal error: napi.h\n');
      const { loadNative: loadCopy } = await import(pathToFileURL(join(copy, 'dist', 'load-native.js')).href);
      const result = loadCopy();
      expect(result.ok).toBe(false);
      expect(result.reason).toContain('the addon did not build at install (node-gyp rebuild exited with 1)');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe('probeKernel on this host', () => {
  const probe = probeKernel();

  it('names the call and errno of every check', () => {
    for (const check of allChecks(probe)) {
      expect(check.reason).toMatch(/^\w+\(?.*: /);
      if (check.ok) {
        expect(check).toMatchObject({ errno: 0, code: null });
      } else {
        expect(check.errno).toBeGreaterThan(0);
        expect(check.code).toMatch(/^E[A-Z0-9]+$/);
        expect(check.reason).toContain(check.code);
      }
    }
  });

  it('agrees with Python about AF_KCM', () => {
    const errno = pythonErrno('kcm');
    expect(probe.kcm.errno, probe.kcm.reason).toBe(errno);
    expect(probe.kcm.ok).toBe(errno === 0);
    // Without AF_KCM the attach probe fails at the same socket() call.
    if (errno !== 0) expect(probe.kcmAttach).toEqual(probe.kcm);
  });

  it('agrees with Python about the kTLS ULP, and reports each cipher', () => {
    const errno = pythonErrno('tls_ulp');
    expect(probe.ktls.ulp.errno, probe.ktls.ulp.reason).toBe(errno);
    expect(Object.keys(probe.ktls.ciphers).sort()).toEqual(['aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305']);
    if (errno !== 0) {
      // Without the ULP no cipher can be set, and each says so.
      for (const { tx, rx } of Object.values(probe.ktls.ciphers)) {
        expect(tx.reason).toContain('TCP_ULP');
        expect(rx.reason).toContain('TCP_ULP');
      }
    }
  });

  it('reports the capabilities /proc reports', () => {
    expect(probe.capabilities.query.ok).toBe(true);
    const { bpf, netAdmin } = procCapabilities();
    expect({ bpf: probe.capabilities.bpf, netAdmin: probe.capabilities.netAdmin }).toEqual({ bpf, netAdmin });
  });

  it('loads BPF and sets up sockmap exactly when the privileges allow it', () => {
    const { bpf, netAdmin } = procCapabilities();
    expect(probe.bpf.ok, probe.bpf.reason).toBe(bpf || unprivilegedBpfDisabled() === 0);
    // sk_skb programs and sockmap need CAP_BPF and CAP_NET_ADMIN together.
    for (const check of Object.values(probe.sockmap)) {
      expect(check.ok, check.reason).toBe(bpf && netAdmin);
    }
  });
});
