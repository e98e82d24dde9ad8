import type { Percentiles } from './histogram.js';
import type { ServerStatsSnapshot } from './server-stats.js';

/** Renders a stats snapshot in the Prometheus text exposition format (0.0.4). */
export function toPrometheus(stats: ServerStatsSnapshot, prefix = 'kmux'): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string): string => {
    const full = `${prefix}_${name}`;
    lines.push(`# HELP ${full} ${help}`, `# TYPE ${full} ${type}`);
    return full;
  };
  const sample = (name: string, labels: Record<string, string | number>, value: number): void => {
    const rendered = Object.entries(labels)
      .map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
      .join(',');
    lines.push(`${name}${rendered ? `{${rendered}}` : ''} ${value}`);
  };
  const summary = (name: string, labels: Record<string, string | number>, p: Percentiles): void => {
    for (const [quantile, us] of [['0.5', p.p50], ['0.9', p.p90], ['0.99', p.p99], ['0.999', p.p999]] as const) {
      sample(name, { ...labels, quantile }, us / 1e6);
    }
    sample(`${name}_sum`, labels, (p.mean * p.count) / 1e6);
    sample(`${name}_count`, labels, p.count);
  };

  let name = family('connections_open', 'gauge', 'Open client connections.');
  sample(name, {}, stats.connections.open);
  name = family('connections_accepted_total', 'counter', 'Connections accepted.');
  sample(name, {}, stats.connections.accepted);
  name = family('connections_rejected_total', 'counter', 'Connections refused by maxConnections.');
  sample(name, {}, stats.connections.rejected);
  name = family('connections_aged_total', 'counter', 'Connections ended gracefully at their maximum age (maxConnectionAgeMs).');
  sample(name, {}, stats.connections.aged);
  name = family('connection_errors_total', 'counter', 'Connections closed for an error, by kind.');
  for (const [kind, n] of Object.entries(stats.connectionErrors)) sample(name, { kind }, n);

  name = family('requests_received_total', 'counter', 'Request frames received.');
  sample(name, {}, stats.requests.received);
  name = family('requests_total', 'counter', 'Requests finished, by outcome.');
  for (const [outcome, n] of Object.entries(stats.requests.outcomes)) sample(name, { outcome }, n);
  name = family('requests_in_flight', 'gauge', 'Requests accepted and not yet answered.');
  sample(name, {}, stats.requests.inFlight);
  name = family('requests_queued', 'gauge', 'Requests waiting for a worker with room.');
  sample(name, {}, stats.requests.queued);
  name = family('replies_dropped_total', 'counter', 'Late replies dropped (request already answered or connection gone).');
  sample(name, {}, stats.requests.dropped);

  name = family('method_calls_total', 'counter', 'Requests finished, by method.');
  for (const [method, m] of Object.entries(stats.methods)) sample(name, { method }, m.calls);
  name = family('method_exceptions_total', 'counter', 'Requests answered with an exception the service declares, by method.');
  for (const [method, m] of Object.entries(stats.methods)) sample(name, { method }, m.exceptions);
  name = family('method_failures_total', 'counter', 'Requests that did not succeed (declared exceptions not included), by method.');
  for (const [method, m] of Object.entries(stats.methods)) sample(name, { method }, m.failures);
  name = family('request_duration_seconds', 'summary', 'Time from frame received to reply written, by method.');
  for (const [method, m] of Object.entries(stats.methods)) summary(name, { method }, m.latencyUs);

  name = family('worker_requests_total', 'counter', 'Requests dispatched to each worker slot.');
  for (const w of stats.workers) sample(name, { worker: w.slot }, w.dispatched);
  name = family('worker_in_flight', 'gauge', 'Requests each worker slot holds.');
  for (const w of stats.workers) sample(name, { worker: w.slot }, w.inFlight);
  name = family('worker_restarts_total', 'counter', 'Worker replacements after a crash or exit.');
  for (const w of stats.workers) sample(name, { worker: w.slot }, w.restarts);
  name = family('worker_duration_seconds', 'summary', 'Time from dispatch to reply, by worker slot.');
  for (const w of stats.workers) summary(name, { worker: w.slot }, w.latencyUs);

  const { buffers } = stats;
  if (buffers) {
    name = family('buffered_bytes', 'gauge', 'Bytes held for partial frames, requests in flight and unsent replies (maxBufferedBytes budget).');
    sample(name, {}, buffers.bytes);
    name = family('buffered_bytes_limit', 'gauge', 'maxBufferedBytes.');
    sample(name, {}, buffers.limit);
    name = family('buffer_shed_total', 'counter', 'Requests answered "overloaded" because maxBufferedBytes was reached.');
    sample(name, {}, buffers.shed);
    name = family('buffer_pauses_total', 'counter', 'Times a connection stopped being read because maxBufferedBytes was reached.');
    sample(name, {}, buffers.pauses);
  }

  const kcm = stats.kernel?.kcm;
  if (kcm) {
    name = family('kernel_kcm_total', 'counter', "The kernel's KCM counters (/proc/net/kcm_stats, whole network namespace).");
    for (const [block, counters] of Object.entries(kcm)) {
      for (const [counter, n] of Object.entries(counters as Record<string, number>)) sample(name, { block, counter }, n);
    }
  }

  const tls = stats.tls;
  if (tls) {
    name = family('tls_ktls', 'gauge', 'Whether TLS connections are handed to the kernel (kTLS) after the handshake; reason says why or why not.');
    sample(name, { requested: tls.requested, reason: tls.reason }, tls.ktls ? 1 : 0);
    name = family('tls_handshaking', 'gauge', 'TLS connections in their handshake before the kTLS handoff.');
    sample(name, {}, tls.handshaking);
    name = family('tls_handoffs_total', 'counter', 'TLS connections handed to kTLS, by version and cipher.');
    for (const [key, n] of Object.entries(tls.handoffs)) {
      const [version = key, cipher = ''] = key.split(' ');
      sample(name, { version, cipher }, n);
    }
    const byKey = (metric: string, help: string, label: string, counts: Readonly<Record<string, number>>): void => {
      const full = family(metric, 'counter', help);
      for (const [key, n] of Object.entries(counts)) sample(full, { [label]: key }, n);
    };
    byKey('tls_userspace_total', 'TLS connections served by user-space TLS, by reason.', 'reason', tls.userspace);
    byKey('tls_failed_total', 'TLS connections closed because the handshake or the kTLS handoff failed, by reason.', 'reason', tls.failed);
    byKey('tls_ktls_closed_total', 'kTLS connections ended, by reason (close_notify, eof, bad_record, peer_alert, key_update, ...).', 'reason', tls.closed);
    byKey('tls_key_updates_total', 'TLS 1.3 KeyUpdates: new keys installed in the kernel by direction (rx, tx), and refused (the kernel cannot rekey).', 'direction', tls.keyUpdates);
  }
  const tlsStat = stats.kernel?.tls;
  if (tlsStat) {
    // TlsCurr* are sockets now in kTLS; the rest only grow.
    const entries = Object.entries(tlsStat);
    name = family('kernel_tls_current', 'gauge', "The kernel's kTLS socket gauges (/proc/net/tls_stat TlsCurr*, whole network namespace).");
    for (const [counter, n] of entries) if (counter.startsWith('TlsCurr')) sample(name, { counter }, n);
    name = family('kernel_tls_total', 'counter', "The kernel's kTLS counters (/proc/net/tls_stat, whole network namespace).");
    for (const [counter, n] of entries) if (!counter.startsWith('TlsCurr')) sample(name, { counter }, n);
  }

  return `${lines.join('\n')}\n`;
}
