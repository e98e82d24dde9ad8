import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, rejection, startServer } from '../helpers.js';
import { parsePrometheus, sampleValue } from './prometheus-parse.js';

describe('Server stats() and metrics()', () => {
  afterAll(cleanup);

  it('counts calls, failures and outcomes per method and the share of each worker', async () => {
    const { server, client } = await startServer();
    await Promise.all(Array.from({ length: 60 }, (_, i) => client.call('echo', `e${i}`)));
    for (let i = 0; i < 5; i++) await rejection(client.call('fail', 'x'));
    for (let i = 0; i < 3; i++) await rejection(client.call('nope', 'x'));

    const stats = server.stats();
    expect(stats.methods.echo).toMatchObject({ calls: 60, failures: 0 });
    expect(stats.methods.echo!.latencyUs.count).toBe(60);
    expect(stats.methods.echo!.latencyUs.max).toBeGreaterThan(0);
    expect(stats.methods.fail).toMatchObject({ calls: 5, failures: 5 });
    expect(stats.methods.nope).toMatchObject({ calls: 3, failures: 3 });
    expect(stats.requests).toMatchObject({ received: 68, inFlight: 0, queued: 0, dropped: 0 });
    // Errors the handler side reports (throws, unknown methods) are "failed" replies.
    expect(stats.requests.outcomes).toEqual({ ok: 60, failed: 8 });
    expect(stats.latencyUs.count).toBe(68);

    const dispatched = stats.workers.map((w) => w.dispatched);
    expect(dispatched.reduce((a, b) => a + b, 0)).toBe(68);
    expect(stats.workers.map((w) => w.completed).reduce((a, b) => a + b, 0)).toBe(68);
    expect(Math.min(...dispatched)).toBeGreaterThan(0);
    for (const worker of stats.workers) {
      expect(worker).toMatchObject({ live: true, inFlight: 0, restarts: 0 });
      expect(worker.threadId).toBeGreaterThan(0);
      expect(worker.latencyUs.count).toBe(worker.completed);
    }
    expect(new Set(stats.workers.map((w) => w.threadId)).size).toBe(2);
    expect(stats.connections).toEqual({ open: 1, accepted: 1, rejected: 0, aged: 0 });
    expect(stats.connectionErrors).toEqual({});

    const metrics = parsePrometheus(server.metrics());
    expect(sampleValue(metrics, 'kmux_requests_total', { outcome: 'ok' })).toBe(60);
    expect(sampleValue(metrics, 'kmux_requests_total', { outcome: 'failed' })).toBe(8);
    expect(sampleValue(metrics, 'kmux_method_calls_total', { method: 'echo' })).toBe(60);
    expect(sampleValue(metrics, 'kmux_request_duration_seconds_count', { method: 'fail' })).toBe(5);
    expect(sampleValue(metrics, 'kmux_worker_requests_total', { worker: '0' })).toBe(dispatched[0]);
    expect(sampleValue(metrics, 'kmux_connections_open')).toBe(1);
  });
});
