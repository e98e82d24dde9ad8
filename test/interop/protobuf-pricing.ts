// The example Pricing service (examples/protobuf) as the protobuf interop tests use it: a
// kmux Server with 2 workers, the client's types, and the answers the handler must give,
// computed here from the rules in pricing.proto rather than by the handler's code.
import { pbkdf2Sync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Server } from '@kmux/core';
import { protobufCodec, type UnaryCall } from '@kmux/protobuf';

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

export async function startPricingServer(schema: string, options: { methodDeadlines?: Record<string, number> } = {}) {
  const server = new Server({
    codec: protobufCodec({ schema, service: PRICING_SERVICE, handler: `${PRICING_DIR}handler.mjs` }),
    workers: 2,
    logger: quietLogger,
    ...options,
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, port };
}

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
