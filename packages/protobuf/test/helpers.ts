// Paths of the example service and the test fixtures, and an independent reading of the
// envelope and service schemas with protobufjs itself, so that the tests check kmux's own
// wire code against a real protobuf implementation.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { ENVELOPE_PROTO } from '@kmux/protobuf';

const EXAMPLE_DIR = fileURLToPath(new URL('../../../examples/protobuf/', import.meta.url));
export const PRICING_PROTO = `${EXAMPLE_DIR}pricing.proto`;
export const PRICING_BUNDLE = `${EXAMPLE_DIR}pricing.json`;
export const PRICING_SERVICE = 'kmux.example.v1.Pricing';
export const FIXTURE_HANDLER = fileURLToPath(new URL('./fixtures/pricing-handler.mjs', import.meta.url));

/** Both forms a schema can take; every codec test runs against each. */
export const SCHEMAS = [
  ['.proto file', PRICING_PROTO],
  ['pbjs JSON bundle', PRICING_BUNDLE],
] as const;

const envelopeRoot = protobuf.loadSync(ENVELOPE_PROTO);
export const RequestType = envelopeRoot.lookupType('kmux.envelope.v1.Request');
export const ResponseType = envelopeRoot.lookupType('kmux.envelope.v1.Response');
export const StatusEnum = envelopeRoot.lookupEnum('kmux.envelope.v1.Status');

export const pricing = protobuf.loadSync(PRICING_PROTO);

/** The contexts the fixture handler has seen (see fixtures/pricing-handler.mjs). */
export function fixtureCalls(): Array<{ method: string; deadline: number }> {
  return ((globalThis as { pricingFixtureCalls?: Array<{ method: string; deadline: number }> }).pricingFixtureCalls ??= []);
}

/** A Request frame body encoded by protobufjs. */
export function requestFrame(fields: { id?: number; method?: string; deadlineMs?: number; payload?: Uint8Array }): Buffer {
  return Buffer.from(RequestType.encode(RequestType.fromObject(fields)).finish());
}

/** A Response frame body decoded by protobufjs, with the status as its name. */
export function readResponse(body: Buffer): { id: number; status: string; message: string; payload: Buffer } {
  const decoded = ResponseType.toObject(ResponseType.decode(body), { defaults: true, enums: String });
  return { id: decoded.id, status: decoded.status, message: decoded.message, payload: Buffer.from(decoded.payload) };
}

/** `message` of the example type `typeName` (e.g. "GetPriceRequest"), serialized. */
export function encodeMessage(typeName: string, message: Record<string, unknown>): Uint8Array {
  const type = pricing.lookupType(`kmux.example.v1.${typeName}`);
  return type.encode(type.fromObject(message)).finish();
}

export function decodeMessage(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const type = pricing.lookupType(`kmux.example.v1.${typeName}`);
  return type.toObject(type.decode(bytes), { defaults: true });
}
