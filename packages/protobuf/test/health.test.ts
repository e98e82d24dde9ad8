// grpc.health.v1 in the kmux envelope, on a real server: Check and Watch, an unknown service,
// and a draining server, on user space and native (whose I/O thread must route around the
// workers that already let go of a draining connection). Requests and replies are written and read with protobufjs from
// gRPC's own message layout (HealthCheckRequest.service = 1, HealthCheckResponse.status = 1).
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Server } from '@kmux/core';
import { HEALTH_CHECK, HEALTH_WATCH, ServingStatus, protobufClientCodec, protobufCodec } from '@kmux/protobuf';
import { fileURLToPath } from 'node:url';
import { PRICING_PROTO, PRICING_SERVICE, encodeMessage, readResponse, requestFrame } from './helpers.js';

const EXAMPLE_HANDLER = fileURLToPath(new URL('../../../examples/protobuf/handler.mjs', import.meta.url));

const health = protobuf.parse(`syntax = "proto3";
  message HealthCheckRequest { string service = 1; }
  message HealthCheckResponse { enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; } ServingStatus status = 1; }`).root;
const HealthRequest = health.lookupType('HealthCheckRequest');
const HealthResponse = health.lookupType('HealthCheckResponse');

describe.each(['userspace', 'native'] as const)('grpc.health.v1 in the kmux envelope, over %s', (transport) => {
  let server: Server;
  let client: Client;
  let id = 2;
  beforeAll(async () => {
    server = new Server({ codec: protobufCodec({ schema: PRICING_PROTO, service: PRICING_SERVICE, handler: EXAMPLE_HANDLER }), workers: 2, transport, logger: { info() {}, warn: console.warn, error: console.error } });
    const { port } = await server.listen();
    client = new Client({ port, codec: protobufClientCodec });
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  async function ask(method: string, service: string) {
    const payload = HealthRequest.encode({ service }).finish();
    const reply = readResponse(await client.request(id, requestFrame({ id: id++, method, payload })));
    const status = reply.status === 'OK' ? (HealthResponse.toObject(HealthResponse.decode(reply.payload), { enums: String, defaults: true }).status as string) : null;
    return { envelope: reply.status, status, message: reply.message };
  }

  it('Check: SERVING for the server as a whole and for its service, NOT_FOUND for another', async () => {
    expect(await ask(HEALTH_CHECK, '')).toMatchObject({ envelope: 'OK', status: 'SERVING' });
    expect(await ask(HEALTH_CHECK, PRICING_SERVICE)).toMatchObject({ envelope: 'OK', status: 'SERVING' });
    expect(await ask(HEALTH_CHECK, 'other.Service')).toMatchObject({ envelope: 'NOT_FOUND', message: "unknown service 'other.Service'" });
    expect(ServingStatus.SERVING).toBe(HealthResponse.lookupEnum('ServingStatus').values.SERVING);
    // The exact bytes WIRE.md §11 shows.
    const request = Buffer.from('0801121b677270632e6865616c74682e76312e4865616c74682f436865636b', 'hex');
    expect((await client.request(1, request)).toString('hex')).toBe('080122020801');
  });

  it('Watch: the status now, SERVICE_UNKNOWN (not an error) for an unknown service', async () => {
    expect(await ask(HEALTH_WATCH, PRICING_SERVICE)).toMatchObject({ envelope: 'OK', status: 'SERVING' });
    expect(await ask(HEALTH_WATCH, 'other.Service')).toMatchObject({ envelope: 'OK', status: 'SERVICE_UNKNOWN' });
  });

  it('a draining server answers UNAVAILABLE: not serving', async () => {
    const slow = client.request(id, requestFrame({ id: id++, method: 'Sleep', payload: encodeMessage('SleepRequest', { ms: 500 }) })).catch(() => null);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = server.close({ timeoutMs: 3000 });
    expect(await ask(HEALTH_CHECK, '')).toMatchObject({ envelope: 'UNAVAILABLE' });
    await slow;
    await closed;
  });
});
