import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createProtobufClient, loadService } from '@kmux/protobuf';
import { ktlsSupport } from '@kmux/core';
import { join, relative } from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { removeDir, selfSignedCert } from '../../core/test/tls/fixtures.js';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../examples/thrift/', import.meta.url));
const requireExample = createRequire(EXAMPLE);
const thrift = requireExample('thrift');
const Catalog = requireExample('./gen-nodejs/Catalog.js');
const THRIFT_SERVICE = ['--thrift', `${EXAMPLE}gen-nodejs/Catalog.js`, '--handler', `${EXAMPLE}handler.js`];
const PROTOBUF_EXAMPLE = fileURLToPath(new URL('../../../examples/protobuf/', import.meta.url));
const PRICING_PROTO = `${PROTOBUF_EXAMPLE}pricing.proto`;
const PRICING_SERVICE = 'kmux.example.v1.Pricing';
const PROTOBUF_SERVICE = ['--proto', PRICING_PROTO, '--service', PRICING_SERVICE, '--handler', `${PROTOBUF_EXAMPLE}handler.mjs`];

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** Starts `kmux serve` and resolves with its ready line and port. */
async function startServe(extra: string[] = [], service = THRIFT_SERVICE): Promise<{ child: ChildProcess; line: string; port: number }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...service, '--port', '0', '--workers', '2', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (out.includes('\n')) break;
  }
  const line = out.split('\n')[0]!;
  const port = Number(/:(\d+),/.exec(line)?.[1]);
  return { child, line, port };
}

function callEcho(port: number, payload: Buffer, protocol = thrift.TBinaryProtocol): Promise<Buffer> {
  const connection = thrift.createConnection('127.0.0.1', port, { transport: thrift.TFramedTransport, protocol });
  const client = thrift.createClient(Catalog, connection);
  return new Promise((resolve, reject) => {
    connection.on('error', reject);
    client.echo(payload, (error: unknown, reply: Buffer) => {
      connection.end();
      if (error) reject(error);
      else resolve(reply);
    });
  });
}

describe('kmux serve', () => {
  it('prints one ready line with address, transport and workers, serves stock clients, drains on SIGTERM', async () => {
    const { child, line, port } = await startServe();
    expect(line).toMatch(/^kmux: serving binary on 127\.0\.0\.1:\d+, transport userspace .*, 2 workers$/);
    expect(await callEcho(port, Buffer.from('hello'))).toEqual(Buffer.from('hello'));

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });

  it('serves /metrics, /healthz and /readyz on the metrics port; ready turns 503 as soon as a drain starts', async () => {
    const { child, line, port } = await startServe(['--metrics-port', '0']);
    const metricsPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(line)?.[1]);
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
      return `${response.status} ${(await response.text()).trim().split('\n')[0]}`;
    };
    expect(await get('/healthz')).toBe('200 serving');
    expect(await get('/readyz')).toBe('200 serving');
    expect(await get('/metrics')).toMatch(/^200 # HELP kmux_/);
    expect(await get('/nope')).toBe('404 ');

    const connection = thrift.createConnection('127.0.0.1', port, { transport: thrift.TFramedTransport, protocol: thrift.TBinaryProtocol });
    const client = thrift.createClient(Catalog, connection);
    const slow = new Promise((resolve) => client.sleep(1500, (error: unknown, value: unknown) => resolve(error ?? value)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGTERM');
    await expect.poll(() => get('/readyz'), { timeout: 1000, interval: 20 }).toBe('503 draining');
    expect(await get('/healthz')).toBe('200 draining');
    expect(await slow).toBe(1500);
    connection.end();
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });

  /** Starts a stock client's sleep(ms) call; resolves once the server runs it, with a promise of how the call ends. */
  async function sleepCall(port: number, ms: number): Promise<{ ended: Promise<unknown> }> {
    const connection = thrift.createConnection('127.0.0.1', port, { transport: thrift.TFramedTransport });
    connection.on('error', () => {});
    const client = thrift.createClient(Catalog, connection);
    const ended = new Promise((resolve) => client.sleep(ms, (error: unknown, slept: number) => resolve(error ?? slept)));
    await new Promise((resolve) => setTimeout(resolve, 300)); // the request reaches a worker
    return { ended: ended.finally(() => connection.end()) };
  }

  function stderrOf(child: ChildProcess): { readonly text: string } {
    const log = { text: '' };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => (log.text += chunk));
    return log;
  }

  it('drains for --drain-timeout, answers what still runs with shutting_down, counts it and says stopped', async () => {
    const { child, port } = await startServe(['--drain-timeout', '0.5']);
    const stderr = stderrOf(child);
    const call = await sleepCall(port, 10_000);
    child.kill('SIGINT');
    const reply = await call.ended;
    expect(reply).toBeInstanceOf(thrift.Thrift.TApplicationException);
    expect((reply as Error).message).toMatch(/shutting down/);
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(stderr.text).toMatch(/kmux: SIGINT: shutting down, draining 1 in-flight requests for up to 0\.5 s/);
    expect(stderr.text).toMatch(/kmux: stopped; 1 requests still running at the drain timeout were cut off with shutting_down\n$/);
  });

  it('exits at once on a second signal, saying it forces', async () => {
    const { child, port } = await startServe(['--drain-timeout', '60']);
    const stderr = stderrOf(child);
    await sleepCall(port, 30_000);
    child.kill('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    expect(code).toBe(130);
    expect(stderr.text).toMatch(/kmux: SIGINT again: forcing exit now/);
    expect(stderr.text).not.toMatch(/kmux: stopped/);
  });

  it('serves the compact protocol when asked', async () => {
    const { line, port } = await startServe(['--protocol', 'compact']);
    expect(line).toContain('serving compact');
    expect(await callEcho(port, Buffer.from('c'), thrift.TCompactProtocol)).toEqual(Buffer.from('c'));
  });

  it('serves a protobuf service from its .proto file', async () => {
    const { child, line, port } = await startServe([], PROTOBUF_SERVICE);
    expect(line).toMatch(/^kmux: serving protobuf kmux\.example\.v1\.Pricing on 127\.0\.0\.1:\d+, transport userspace .*, 2 workers$/);
    const pricing = createProtobufClient(await loadService(PRICING_PROTO, PRICING_SERVICE), { port });
    try {
      expect(await pricing.getPrice({ sku: 'ms-002' })).toMatchObject({ title: 'Wireless mouse', unitPriceCents: 2900 });
    } finally {
      pricing.close();
    }
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });

  it('fails at start, with the reason, when an explicit transport is unavailable', () => {
    const result = spawnSync(
      process.execPath,
      [CLI, 'serve', '--thrift', `${EXAMPLE}gen-nodejs/Catalog.js`, '--handler', `${EXAMPLE}handler.js`, '--port', '0', '--transport', 'kcm'],
      { encoding: 'utf8' },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/transport 'kcm' is unavailable: .*AF_KCM/);
  });

  it('rejects bad usage with exit code 2 and the help', () => {
    const missing = spawnSync(process.execPath, [CLI, 'serve'], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('serve needs exactly one of --thrift or --proto, and --handler');
    expect(missing.stderr).toContain('usage: kmux serve');
    const badProtocol = spawnSync(process.execPath, [CLI, 'serve', '--thrift', 'x', '--handler', 'y', '--protocol', 'json'], {
      encoding: 'utf8',
    });
    expect(badProtocol.status).toBe(2);
  });

  it('serves several Thrift services on one port: --thrift/--handler pairs, or a --config file', async () => {
    const Inventory = requireExample('./gen-nodejs/Inventory.js');
    const pairs = [...THRIFT_SERVICE, '--thrift', `${EXAMPLE}gen-nodejs/Inventory.js`, '--handler', `${EXAMPLE}inventory-handler.js`];
    const dir = mkdtempSync(join(tmpdir(), 'kmux-config-'));
    const config = join(dir, 'services.json');
    // Paths relative to the config file.
    const example = (file: string) => relative(dir, join(EXAMPLE, file));
    writeFileSync(
      config,
      JSON.stringify({
        services: {
          Catalog: { thrift: example('gen-nodejs/Catalog.js'), handler: example('handler.js') },
          Inventory: { thrift: example('gen-nodejs/Inventory.js'), handler: example('inventory-handler.js') },
        },
        defaultService: 'Catalog',
        methodDeadlines: { 'Inventory:sleep': 300 },
      }),
    );
    try {
      for (const [service, deadline] of [[[...pairs, '--default-service', 'Catalog'], false], [['--config', config], true]] as const) {
        const { line, port } = await startServe([], [...service]);
        expect(line).toMatch(/^kmux: serving binary Catalog \(default\), Inventory on 127\.0\.0\.1:\d+,/);
        const connection = thrift.createConnection('127.0.0.1', port, { transport: thrift.TFramedTransport, protocol: thrift.TBinaryProtocol });
        const multiplexer = new thrift.Multiplexer();
        const inventory = multiplexer.createClient('Inventory', Inventory, connection);
        const catalog = multiplexer.createClient('Catalog', Catalog, connection);
        const sleep = (client: any, ms: number) =>
          new Promise((resolve) => client.sleep(ms, (error: unknown, value: unknown) => resolve(error ?? value)));
        try {
          expect(await sleep(catalog, 5)).toBe(5);
          const inventorySleep = await sleep(inventory, 600);
          if (deadline) expect(inventorySleep).toMatchObject({ message: expect.stringMatching(/^deadline exceeded: Inventory:sleep/) });
          else expect(inventorySleep).toBe(-600);
        } finally {
          connection.end();
        }
        expect(await callEcho(port, Buffer.from('bare name'))).toEqual(Buffer.from('bare name'));
      }
    } finally {
      removeDir(dir);
    }
  });

  it('takes exactly one service kind, with the options that belong to it', () => {
    for (const [args, message] of [
      [[...THRIFT_SERVICE, '--proto', 'p.proto'], 'exactly one of --thrift or --proto'],
      [['--proto', 'p.proto', '--handler', 'h.mjs'], '--proto needs --service'],
      [[...PROTOBUF_SERVICE, '--protocol', 'compact'], '--protocol goes with --thrift'],
      [[...THRIFT_SERVICE, '--service', 'x.Y'], '--service goes with --proto'],
      [[...THRIFT_SERVICE, '--thrift', 'Other.js'], 'each --thrift needs its --handler'],
      [[...THRIFT_SERVICE, '--default-service', 'Nope'], "defaultService 'Nope' is not one of the services (Catalog)"],
      [['--config', 'missing.json'], '--config'],
      [['--config', 'x.json', '--thrift', 'y.js'], '--config names the services; drop --thrift'],
    ] as const) {
      const result = spawnSync(process.execPath, [CLI, 'serve', ...args], { encoding: 'utf8' });
      expect(result.status, message).toBe(2);
      expect(result.stderr).toContain(message);
    }
  });
});

describe.skipIf(ktlsSupport().available)('kmux serve with TLS on a kernel without kTLS', () => {
  const { key, cert, dir } = selfSignedCert();
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, cert);
  writeFileSync(keyFile, key);
  afterAll(() => removeDir(dir));

  it('serves user-space TLS to the stock thrift client and says why kTLS is off', async () => {
    const { line, port } = await startServe(['--tls-cert', certFile, '--tls-key', keyFile]);
    expect(line).toMatch(/^kmux: serving binary tls on .*; TLS records in user space: kTLS unavailable: .*TCP_ULP.*, 2 workers$/);
    const connection = thrift.createSSLConnection('127.0.0.1', port, {
      transport: thrift.TFramedTransport,
      protocol: thrift.TBinaryProtocol,
      ca: cert,
      servername: 'localhost',
    });
    const client = thrift.createClient(Catalog, connection);
    const reply = await new Promise((resolve, reject) => {
      connection.on('error', reject);
      client.echo(Buffer.from('tls'), (error: unknown, value: Buffer) => (error ? reject(error) : resolve(value)));
    });
    connection.end();
    expect(reply).toEqual(Buffer.from('tls'));
  });

  it("fails at start with --ktls require, and rejects a bad --ktls", () => {
    const serve = (...extra: string[]) => spawnSync(process.execPath, [CLI, 'serve', ...THRIFT_SERVICE, '--port', '0', ...extra], { encoding: 'utf8' });
    const required = serve('--tls-cert', certFile, '--tls-key', keyFile, '--ktls', 'require');
    expect(required.status).toBe(1);
    expect(required.stderr).toMatch(/kTLS is required but unavailable: .*TCP_ULP/);
    expect(serve('--tls-cert', certFile, '--tls-key', keyFile, '--ktls', 'on').stderr).toContain('--ktls must be one of off, auto, require');
    const withoutTls = serve('--ktls', 'auto');
    expect(withoutTls.status).toBe(2);
    expect(withoutTls.stderr).toContain('--ktls needs --tls-cert and --tls-key');
  });
});

describe('kmux probe', () => {
  it('reports every transport with a reason, as JSON', () => {
    const result = spawnSync(process.execPath, [CLI, 'probe', '--json'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    for (const name of ['kcm', 'sockmap', 'userspace']) {
      expect(typeof report[name].available).toBe('boolean');
      expect(report[name].reason.length).toBeGreaterThan(0);
    }
    expect(report.userspace.available).toBe(true);
    // auto takes KCM where the kernel has it; sockmap only when asked for (see EXPLICIT_ONLY).
    expect(report.auto.name).toBe(report.kcm.available ? 'kcm' : 'userspace');
    if (report.sockmap.available) expect(report.auto.notTaken.sockmap).toMatch(/only when asked for/);
    expect(report.ktls).toEqual({ ...ktlsSupport(), ciphers: [...ktlsSupport().ciphers] });
  });

  it('prints a human-readable report naming the choice', () => {
    const result = spawnSync(process.execPath, [CLI, 'probe'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/AF_KCM +(yes|no)/);
    expect(result.stdout).toMatch(/^auto picks: (kcm|sockmap|userspace)/m);
    expect(result.stdout).toMatch(/^kTLS +(yes|no) +Linux /m);
    expect(result.stdout).toMatch(/^ {4}chacha20-poly1305 +(yes|no)/m);
  });
});
