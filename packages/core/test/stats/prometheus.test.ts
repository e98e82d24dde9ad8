import { describe, expect, it } from 'vitest';
import { Histogram, toPrometheus, type ServerStatsSnapshot } from '@kmux/core';
import { parsePrometheus, sampleValue } from './prometheus-parse.js';

function percentiles(values: number[]) {
  const histogram = new Histogram();
  for (const value of values) histogram.record(value);
  return histogram.summary();
}

const NASTY = 'we"ird\\method\nname';

const snapshot: ServerStatsSnapshot = {
  threadSlice: { requestedUs: 100, mainThread: { ok: true, reason: 'sched_setattr: ok' } },
  connections: { open: 2, accepted: 7, rejected: 1, aged: 4 },
  requests: { received: 12, inFlight: 1, queued: 0, dropped: 3, outcomes: { ok: 9, failed: 1, deadline_exceeded: 1 } },
  connectionErrors: { frame_too_large: 1, idle_timeout: 2 },
  latencyUs: percentiles([100, 200, 4000]),
  methods: {
    echo: { calls: 8, exceptions: 1, failures: 0, latencyUs: percentiles([100, 200, 300, 400]) },
    [NASTY]: { calls: 3, exceptions: 0, failures: 2, latencyUs: percentiles([4000]) },
  },
  workers: [
    { slot: 0, threadId: 1, live: true, dispatched: 6, completed: 6, inFlight: 0, restarts: 0, threadSlice: null, latencyUs: percentiles([50]) },
    { slot: 1, threadId: 3, live: true, dispatched: 5, completed: 4, inFlight: 1, restarts: 1, threadSlice: null, latencyUs: percentiles([70]) },
  ],
};

describe('toPrometheus with kernel counters', () => {
  it('exports /proc/net/kcm_stats by block and counter name', () => {
    const kcm = { mux: { 'RX-Msgs': 14, 'TX-Msgs': 3 }, psock: { 'RX-TooBig': 2 } };
    const exposition = parsePrometheus(toPrometheus({ ...snapshot, kernel: { kcm } }));
    expect(sampleValue(exposition, 'kmux_kernel_kcm_total', { block: 'mux', counter: 'RX-Msgs' })).toBe(14);
    expect(sampleValue(exposition, 'kmux_kernel_kcm_total', { block: 'psock', counter: 'RX-TooBig' })).toBe(2);
    expect(sampleValue(parsePrometheus(toPrometheus(snapshot)), 'kmux_kernel_kcm_total', { block: 'mux', counter: 'RX-Msgs' })).toBeUndefined();
  });
});

describe('toPrometheus with TLS', () => {
  it('exports the kTLS state with its reason, the per-connection counters and /proc/net/tls_stat', () => {
    const tls = {
      requested: 'auto' as const,
      ktls: true,
      reason: 'Linux 6.12.95: kTLS with aes-gcm-128, aes-gcm-256, chacha20-poly1305',
      handoffs: { 'TLSv1.3 aes-gcm-128': 4, 'TLSv1.2 chacha20-poly1305': 1 },
      userspace: { kernel_lacks_cipher: 2 },
      failed: { handshake: 1 },
      closed: { close_notify: 3, bad_record: 1 },
      keyUpdates: { rx: 1 },
      handshaking: 3,
    };
    const tlsStat = { TlsCurrTxSw: 2, TlsCurrRxSw: 2, TlsTxSw: 5, TlsDecryptError: 1 };
    const exposition = parsePrometheus(toPrometheus({ ...snapshot, tls, kernel: { tls: tlsStat } }));
    expect(sampleValue(exposition, 'kmux_tls_ktls', { requested: 'auto', reason: tls.reason })).toBe(1);
    expect(sampleValue(exposition, 'kmux_tls_handoffs_total', { version: 'TLSv1.3', cipher: 'aes-gcm-128' })).toBe(4);
    expect(sampleValue(exposition, 'kmux_tls_handoffs_total', { version: 'TLSv1.2', cipher: 'chacha20-poly1305' })).toBe(1);
    expect(sampleValue(exposition, 'kmux_tls_userspace_total', { reason: 'kernel_lacks_cipher' })).toBe(2);
    expect(sampleValue(exposition, 'kmux_tls_failed_total', { reason: 'handshake' })).toBe(1);
    expect(sampleValue(exposition, 'kmux_tls_ktls_closed_total', { reason: 'bad_record' })).toBe(1);
    expect(sampleValue(exposition, 'kmux_tls_key_updates_total', { direction: 'rx' })).toBe(1);
    expect(sampleValue(exposition, 'kmux_tls_handshaking', {})).toBe(3);
    expect(exposition.types.get('kmux_kernel_tls_current')).toBe('gauge');
    expect(sampleValue(exposition, 'kmux_kernel_tls_current', { counter: 'TlsCurrRxSw' })).toBe(2);
    expect(sampleValue(exposition, 'kmux_kernel_tls_total', { counter: 'TlsDecryptError' })).toBe(1);
    expect(sampleValue(exposition, 'kmux_kernel_tls_total', { counter: 'TlsCurrRxSw' })).toBeUndefined();
    expect(parsePrometheus(toPrometheus(snapshot)).types.has('kmux_tls_ktls')).toBe(false);
  });
});

describe('toPrometheus', () => {
  const text = toPrometheus(snapshot);
  const exposition = parsePrometheus(text);

  it('writes only HELP, TYPE and samples of declared families', () => {
    expect(exposition.samples.length).toBeGreaterThan(20);
    for (const [name, type] of exposition.types) {
      expect(name.startsWith('kmux_')).toBe(true);
      expect(exposition.help.get(name)?.length).toBeGreaterThan(0);
      if (type === 'counter') expect(name).toMatch(/_total$/);
    }
  });

  it('exports the counters and gauges of the snapshot', () => {
    expect(exposition.types.get('kmux_requests_total')).toBe('counter');
    expect(sampleValue(exposition, 'kmux_requests_total', { outcome: 'ok' })).toBe(9);
    expect(sampleValue(exposition, 'kmux_requests_total', { outcome: 'deadline_exceeded' })).toBe(1);
    expect(sampleValue(exposition, 'kmux_connections_open')).toBe(2);
    expect(sampleValue(exposition, 'kmux_connections_rejected_total')).toBe(1);
    expect(sampleValue(exposition, 'kmux_connections_aged_total')).toBe(4);
    expect(sampleValue(exposition, 'kmux_connection_errors_total', { kind: 'idle_timeout' })).toBe(2);
    expect(sampleValue(exposition, 'kmux_replies_dropped_total')).toBe(3);
    expect(sampleValue(exposition, 'kmux_worker_requests_total', { worker: '1' })).toBe(5);
    expect(sampleValue(exposition, 'kmux_worker_restarts_total', { worker: '1' })).toBe(1);
    expect(sampleValue(exposition, 'kmux_method_calls_total', { method: 'echo' })).toBe(8);
    expect(sampleValue(exposition, 'kmux_method_exceptions_total', { method: 'echo' })).toBe(1);
  });

  it('escapes backslashes, quotes and newlines in label values', () => {
    expect(text).toContain('method="we\\"ird\\\\method\\nname"');
    expect(sampleValue(exposition, 'kmux_method_failures_total', { method: NASTY })).toBe(2);
  });

  it('writes latency summaries in seconds, with _sum and _count', () => {
    expect(exposition.types.get('kmux_request_duration_seconds')).toBe('summary');
    const echo = snapshot.methods.echo!.latencyUs;
    expect(sampleValue(exposition, 'kmux_request_duration_seconds', { method: 'echo', quantile: '0.5' })).toBeCloseTo(echo.p50 / 1e6, 9);
    expect(sampleValue(exposition, 'kmux_request_duration_seconds', { method: 'echo', quantile: '0.99' })).toBeCloseTo(echo.p99 / 1e6, 9);
    expect(sampleValue(exposition, 'kmux_request_duration_seconds_sum', { method: 'echo' })).toBeCloseTo(1000 / 1e6, 9);
    expect(sampleValue(exposition, 'kmux_request_duration_seconds_count', { method: 'echo' })).toBe(4);
  });

  it('takes a metric name prefix', () => {
    const other = parsePrometheus(toPrometheus(snapshot, 'rpc'));
    expect(sampleValue(other, 'rpc_requests_total', { outcome: 'ok' })).toBe(9);
    expect([...other.types.keys()].every((name) => name.startsWith('rpc_'))).toBe(true);
  });
});
