// Debian's haproxy in front of three `kmux serve` processes, configured exactly as
// docs/thrift-deployment.md#behind-haproxy shows (only addresses and ports changed), under load
// from kmux Thrift clients: one backend stopped with SIGTERM loses nothing, one killed with
// SIGKILL fails only the requests it held, each with a typed error. No timing asserts: every
// state is polled for.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KmuxError } from '@kmux/core';
import { createThriftClient } from '@kmux/thrift';
import { Catalog, EXAMPLE_DIR } from './catalog.js';

const HAPROXY = '/usr/sbin/haproxy';
const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));
const DOC = fileURLToPath(new URL('../../docs/thrift-deployment.md', import.meta.url));
const CLIENTS = 6;

type CatalogClient = ReturnType<typeof createThriftClient<typeof import('../../examples/thrift/gen-nodejs/Catalog.js')>>;

interface Backend {
  readonly child: ChildProcess;
  readonly port: number;
  readonly metricsPort: number;
  readonly exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'kmux-haproxy-'));
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The HAProxy configuration block of the deployment doc. */
function documentedConfig(): string {
  const section = readFileSync(DOC, 'utf8').split('## Behind HAProxy')[1]!;
  return /```\n([\s\S]*?)```/.exec(section)![1]!;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startBackend(): Promise<Backend> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--thrift', `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, '--handler', `${EXAMPLE_DIR}handler.js`, '--port', '0', '--metrics-port', '0', '--workers', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stderr!.resume();
  let out = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (out.includes('\n')) break;
  }
  const port = Number(/ on 127\.0\.0\.1:(\d+),/.exec(out)?.[1]);
  const metricsPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1]);
  expect(port, out).toBeGreaterThan(0);
  expect(metricsPort, out).toBeGreaterThan(0);
  return { child, port, metricsPort, exited };
}

async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

/** HAProxy's view of each server of backend kmux: name → status (UP, DOWN, ...), from its admin socket. */
async function serverStates(socketPath: string): Promise<Record<string, string>> {
  const socket = connect(socketPath);
  socket.end('show stat\n');
  let csv = '';
  for await (const chunk of socket) csv += chunk;
  const [header, ...rows] = csv.trim().split('\n');
  const columns = header!.replace(/^# /, '').split(',');
  const states: Record<string, string> = {};
  for (const row of rows) {
    const cells = row.split(',');
    if (cells[0] === 'kmux' && cells[1] !== 'BACKEND') states[cells[1]!] = cells[columns.indexOf('status')]!;
  }
  return states;
}

/** Calls echo in a closed loop and sleep(200) beside it, recording every outcome and the phase of each failure, until stopped. */
function loadLoop(client: CatalogClient, index: number, outcomes: { ok: number; errors: { phase: string; error: unknown }[] }, phase: () => string) {
  let running = true;
  const loop = async (call: (n: number) => Promise<void>): Promise<void> => {
    for (let n = 0; running; n++) {
      try {
        await call(n);
        outcomes.ok++;
      } catch (error) {
        // The phase it failed in: a call made before the kill may fail at the kill.
        outcomes.errors.push({ phase: phase(), error });
      }
    }
  };
  const echo = loop(async (n) => {
    const payload = Buffer.from(`client ${index} call ${n}`);
    expect(await client.echo(payload)).toEqual(payload);
  });
  const sleeps = loop(async () => {
    expect(await client.sleep(200)).toBe(200);
  });
  return async (): Promise<void> => {
    running = false;
    await Promise.all([echo, sleeps]);
  };
}

describe('behind haproxy (Debian)', () => {
  it('three kmux processes: a graceful stop loses nothing, a kill fails only its requests, with typed errors', { timeout: 120_000 }, async () => {
    expect(existsSync(HAPROXY), `${HAPROXY} is missing (the haproxy package)`).toBe(true);
    const backends = await Promise.all([startBackend(), startBackend(), startBackend()]);
    const frontPort = await freePort();
    const adminSocket = join(dir, 'admin.sock');
    const documented = documentedConfig();
    let config = documented.replace('bind :9090', `bind 127.0.0.1:${frontPort}`);
    backends.forEach((backend, i) => (config = config.replace(/server (kmux\d) [\d.]+:9091/, `server kmux${i + 1}-up 127.0.0.1:${backend.port}`)));
    config = config.replaceAll('-up ', ' ');
    // Only the addresses changed; the admin socket (added) is how the test reads server states.
    expect(config.split('\n').filter((line) => !/bind |server kmux/.test(line))).toEqual(documented.split('\n').filter((line) => !/bind |server kmux/.test(line)));
    const cfgPath = join(dir, 'haproxy.cfg');
    writeFileSync(cfgPath, `global\n  stats socket ${adminSocket} level admin\n\n${config}`);
    const haproxy = spawn(HAPROXY, ['-db', '-f', cfgPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(haproxy);
    let haproxyLog = '';
    haproxy.stderr!.on('data', (chunk) => (haproxyLog += chunk));
    await expect.poll(() => existsSync(adminSocket), { timeout: 20_000, interval: 100 }).toBe(true);
    await expect
      .poll(() => serverStates(adminSocket), { timeout: 30_000, interval: 200 })
      .toEqual({ kmux1: 'UP', kmux2: 'UP', kmux3: 'UP' });

    let phase = 'steady';
    const outcomes = { ok: 0, errors: [] as { phase: string; error: unknown }[] };
    const clients = Array.from({ length: CLIENTS }, () =>
      createThriftClient(Catalog as typeof import('../../examples/thrift/gen-nodejs/Catalog.js'), { port: frontPort, timeoutMs: 20_000 }),
    );
    const stops = clients.map((client, i) => loadLoop(client, i, outcomes, () => phase));
    const echoCalls = async (backend: Backend): Promise<number> => {
      const { body } = await httpGet(backend.metricsPort, '/metrics');
      return Number(/^kmux_method_calls_total\{method="echo"\} (\d+)/m.exec(body)?.[1] ?? 0);
    };
    // leastconn spreads the six connections: every backend serves some.
    for (const backend of backends) await expect.poll(() => echoCalls(backend), { timeout: 30_000, interval: 100 }).toBeGreaterThan(20);

    // Graceful stop of kmux1, with a call of its own in flight so that its drain lasts.
    phase = 'graceful';
    const [stopped, killed, survivor] = backends as [Backend, Backend, Backend];
    const direct = createThriftClient(Catalog as typeof import('../../examples/thrift/gen-nodejs/Catalog.js'), { port: stopped.port });
    const longCall = direct.sleep(3000);
    // Answered after the sleep was sent on the same connection: the server has read the sleep.
    expect(await direct.echo(Buffer.from('behind the sleep'))).toEqual(Buffer.from('behind the sleep'));
    stopped.child.kill('SIGTERM');
    await expect.poll(() => httpGet(stopped.metricsPort, '/readyz'), { timeout: 10_000, interval: 50 }).toEqual({ status: 503, body: 'draining\n' });
    await expect.poll(() => serverStates(adminSocket), { timeout: 30_000, interval: 200 }).toMatchObject({ kmux1: expect.stringMatching(/^DOWN/) });
    expect(await longCall).toBe(3000); // in flight at the SIGTERM: answered
    direct.close();
    expect(await stopped.exited).toBe(0);
    // The others carry the load on.
    const servedBefore = outcomes.ok;
    await expect.poll(() => outcomes.ok, { timeout: 30_000, interval: 100 }).toBeGreaterThan(servedBefore + 50);
    expect(outcomes.errors.filter((e) => e.phase === 'graceful')).toEqual([]);

    // SIGKILL of kmux2, with a call of its own in flight: that one fails, typed.
    phase = 'kill';
    const victim = createThriftClient(Catalog as typeof import('../../examples/thrift/gen-nodejs/Catalog.js'), { port: killed.port });
    const cut = victim.sleep(10_000).catch((error: unknown) => error);
    expect(await victim.echo(Buffer.from('behind the sleep'))).toEqual(Buffer.from('behind the sleep'));
    killed.child.kill('SIGKILL');
    expect(await cut).toMatchObject({ kind: 'connection_closed' });
    victim.close();
    await expect.poll(() => serverStates(adminSocket), { timeout: 30_000, interval: 200 }).toMatchObject({ kmux2: expect.stringMatching(/^DOWN/) });
    phase = 'after';
    const servedAfterKill = outcomes.ok;
    await expect.poll(() => outcomes.ok, { timeout: 30_000, interval: 100 }).toBeGreaterThan(servedAfterKill + 50);
    await Promise.all(stops.map((stop) => stop()));
    for (const client of clients) client.close();

    // Only requests that were on kmux2 when it died failed: at most one echo and one sleep per client, each typed.
    const killErrors = outcomes.errors.filter((e) => e.phase === 'kill');
    for (const { error } of killErrors) expect(error).toBeInstanceOf(KmuxError);
    for (const { error } of killErrors) expect(error).toMatchObject({ kind: 'connection_closed' });
    expect(killErrors.length).toBeLessThanOrEqual(2 * CLIENTS);
    expect(outcomes.errors.filter((e) => e.phase !== 'kill')).toEqual([]);
    expect(await serverStates(adminSocket)).toMatchObject({ kmux3: 'UP' });
    // The health probes (a connection each, closed by haproxy) are not connection errors.
    const { body } = await httpGet(survivor.metricsPort, '/metrics');
    expect(body, haproxyLog).not.toMatch(/^kmux_connection_errors_total/m);
  });
});
