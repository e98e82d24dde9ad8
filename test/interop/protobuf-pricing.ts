// The example Pricing service (examples/protobuf) as the protobuf interop tests use it: a
// kmux Server with 2 workers (alone, or with kmux's client for a describe block), a raw
// envelope connection, the client's types, and the answers the handler must give, computed
// here from the rules in pricing.proto rather than by the handler's code.
import { execFile } from 'node:child_process';
import { pbkdf2Sync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll } from 'vitest';
import { Client, Server, type ServerOptions } from '@kmux/core';
import {
  ENVELOPE_PROTO,
  createProtobufClient,
  decodeResponseEnvelope,
  encodeRequestEnvelope,
  loadService,
  protobufClientCodec,
  protobufCodec,
  type ProtobufClient,
  type UnaryCall,
} from '@kmux/protobuf';

export const PRICING_DIR = fileURLToPath(new URL('../../examples/protobuf/', import.meta.url));
export const PRICING_PROTO = `${PRICING_DIR}pricing.proto`;
export const PRICING_BUNDLE = `${PRICING_DIR}pricing.json`;
export const PRICING_SERVICE = 'kmux.example.v1.Pricing';

/** Both forms the server can load the service from. */
export const SCHEMAS = [
  ['.proto file', PRICING_PROTO],
  ['pbjs JSON bundle', PRICING_BUNDLE],
] as const;

export interface BasketLine {
  sku: string;
  quantity: number;
}
export interface Price {
  sku: string;
  title: string;
  unitPriceCents: number;
  currency: string;
}
export interface Quote {
  lines: Array<BasketLine & { unitPriceCents: number; discountPercent: number; lineTotalCents: number }>;
  totalCents: number;
  currency: string;
  signature: Uint8Array;
}

/** The typed view of the Pricing client. */
export interface PricingMethods {
  getPrice: UnaryCall<{ sku: string }, Price>;
  quoteBasket: UnaryCall<{ lines: BasketLine[]; signingRounds: number }, Quote>;
  echo: UnaryCall<{ data: Uint8Array }, { data: Uint8Array }>;
  sleep: UnaryCall<{ ms: number }, { ms: number }>;
}

const quietLogger = { info: () => undefined, warn: console.warn, error: console.error };

export async function startPricingServer(schema: string, options: Pick<ServerOptions, 'methodDeadlines' | 'transport' | 'tls' | 'ktls'> = {}) {
  const server = new Server({
    codec: protobufCodec({ schema, service: PRICING_SERVICE, handler: `${PRICING_DIR}handler.mjs` }),
    workers: 2,
    logger: quietLogger,
    ...options,
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, port };
}

/** The server and client a describe block shares (see servePricing). */
export interface PricingService {
  readonly server: Server;
  readonly port: number;
  /** kmux's typed protobuf client, on one connection. */
  readonly client: ProtobufClient<PricingMethods>;
}

/**
 * Registers, in the calling describe block, a beforeAll that serves Pricing from `schema`
 * (Sleep's deadline 1.5 s) and connects kmux's protobuf client to it, and an afterAll that
 * closes both. The fields read the running service, so use them inside tests and hooks.
 */
export function servePricing(
  schema: string,
  { clientTimeoutMs, ...serverOptions }: Pick<ServerOptions, 'transport'> & { clientTimeoutMs?: number } = {},
): PricingService {
  let server: Server | undefined;
  let port: number | undefined;
  let client: ProtobufClient<PricingMethods> | undefined;
  beforeAll(async () => {
    ({ server, port } = await startPricingServer(schema, { ...serverOptions, methodDeadlines: { Sleep: 1_500 } }));
    client = createProtobufClient<PricingMethods>(await loadService(schema, PRICING_SERVICE), { port, timeoutMs: clientTimeoutMs });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });
  return {
    get server() {
      return started(server);
    },
    get port() {
      return started(port);
    },
    get client() {
      return started(client);
    },
  };
}

function started<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the Pricing service has not started (it starts in beforeAll)');
  return value;
}

/** A raw connection speaking the envelope through the core Client, for what the typed client never sends. */
export function rawEnvelopeConnection(port: number, timeoutMs: number) {
  const connection = new Client({ port, codec: protobufClientCodec, timeoutMs });
  let id = 0;
  const call = async (method: string, payload: Uint8Array, deadlineMs = 0) => {
    id++;
    return decodeResponseEnvelope(await connection.request(id, encodeRequestEnvelope({ id, method, deadlineMs, payload })));
  };
  return { connection, call };
}

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/**
 * Request payloads with a field that declares more bytes than its message has left, each
 * of which protobufjs alone decoded (a string cut short, a line whose sku ran into the next
 * field) or that Python's protobuf rejects: all must be answered INVALID_ARGUMENT.
 */
export const TRUNCATED_PAYLOADS: readonly { method: string; what: string; payload: Buffer }[] = [
  { method: 'GetPrice', what: 'sku of 7 bytes, 6 sent (0a 07 "kb-001")', payload: hex(`0a 07 ${Buffer.from('kb-001').toString('hex')}`) },
  { method: 'GetPrice', what: 'sku of 16 bytes, 3 sent (0a 10 "abc")', payload: hex(`0a 10 ${Buffer.from('abc').toString('hex')}`) },
  { method: 'GetPrice', what: 'sku sent as a varint field (08 06 "kb-001")', payload: hex(`08 06 ${Buffer.from('kb-001').toString('hex')}`) },
  { method: 'Echo', what: 'data of 16 bytes, 3 sent', payload: hex('0a 10 616263') },
  { method: 'QuoteBasket', what: 'a line of 8 bytes, 5 sent', payload: hex('0a 08 0a 03 6b622d 10 01') },
  { method: 'QuoteBasket', what: "a line's sku running past its line into signing_rounds", payload: hex('0a 02 0a 04 6b62 10 03') },
  { method: 'QuoteBasket', what: 'a whole line, then a second of 9 bytes, 3 sent', payload: hex('0a 0a 0a 06 6b622d303031 10 01  0a 09 0a 01 61') },
  { method: 'grpc.health.v1.Health/Check', what: 'health check of a service name of 7 bytes, 4 sent', payload: hex(`0a 07 ${Buffer.from('kmux').toString('hex')}`) },
];

const UNIT_PRICE_CENTS: Record<string, number> = { 'kb-001': 8900, 'ms-002': 2900, 'mn-003': 24900 };

/** The quote pricing.proto describes: 5 % off from 10 pieces, 12 % from 100, a PBKDF2 signature. */
export function expectedQuote(lines: BasketLine[], signingRounds: number): Quote {
  const quoted = lines.map(({ sku, quantity }) => {
    const unitPriceCents = UNIT_PRICE_CENTS[sku]!;
    const discountPercent = quantity >= 100 ? 12 : quantity >= 10 ? 5 : 0;
    return { sku, quantity, unitPriceCents, discountPercent, lineTotalCents: Math.floor((unitPriceCents * quantity * (100 - discountPercent)) / 100) };
  });
  const totalCents = quoted.reduce((sum, line) => sum + line.lineTotalCents, 0);
  const signed = `${quoted.map((line) => `${line.sku}:${line.quantity}:${line.lineTotalCents}`).join(';')}=${totalCents}`;
  return { lines: quoted, totalCents, currency: 'EUR', signature: pbkdf2Sync(signed, 'kmux-example-quote', signingRounds, 32, 'sha256') };
}

// ---- the Python client (protobuf-pricing-client.py) ----------------------------------------

// Explicitly the system interpreter: python3-protobuf is a Debian package, and `python3` on
// PATH may be a pyenv shim without it. scripts/system-deps.mjs installs it and protoc.
export const PYTHON = '/usr/bin/python3';
const CLIENT_SCRIPT = fileURLToPath(new URL('./protobuf-pricing-client.py', import.meta.url));
/** The include root of envelope.proto, so that protoc names its module kmux/envelope/v1. */
const ENVELOPE_INCLUDE = join(dirname(ENVELOPE_PROTO), '../../..');
const run = promisify(execFile);

/** Generates the Python bindings of the envelope and the service into a fresh directory (the caller removes it). */
export async function generatePythonBindings(): Promise<string> {
  const generated = await mkdtemp(join(tmpdir(), 'kmux-protobuf-py-'));
  await run('protoc', [`--python_out=${generated}`, `-I${ENVELOPE_INCLUDE}`, `-I${PRICING_DIR}`, ENVELOPE_PROTO, PRICING_PROTO]);
  return generated;
}

/** Runs the Python client against the server on `port`; its output lines ("passed: …", then "ok"). */
export async function runPythonClient(port: number, generated: string, timeoutMs = 20_000): Promise<string[]> {
  // Asynchronous on purpose: this process is also the server.
  const { stdout } = await run(PYTHON, [CLIENT_SCRIPT, String(port), generated], { timeout: timeoutMs });
  return stdout.trim().split('\n');
}
