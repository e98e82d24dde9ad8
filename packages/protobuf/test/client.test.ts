// The client's own behaviour, against a scripted peer that answers with whatever frame a
// test wants: statuses it does not know, payloads that do not decode, no server at all.
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { FrameSplitter, encodeFrame } from '@kmux/core';
import { Status, createProtobufClient, encodeResponseEnvelope, loadService, readRequestEnvelope, type RequestEnvelopeHead } from '@kmux/protobuf';
import { PRICING_PROTO, PRICING_SERVICE } from './helpers.js';

const service = await loadService(PRICING_PROTO, PRICING_SERVICE);
let peer: NetServer | null = null;
afterEach(() => {
  peer?.close();
  peer = null;
});

/** A TCP peer that answers every request frame with `answer(request)`. */
async function scriptedPeer(answer: (request: RequestEnvelopeHead) => { status: number; message?: string; payload?: Uint8Array }) {
  peer = createServer((socket) => {
    const splitter = new FrameSplitter(1 << 20);
    socket.on('data', (chunk: Buffer) =>
      splitter.push(chunk, (body) => {
        const request = readRequestEnvelope(body);
        const { status, message = '', payload = new Uint8Array(0) } = answer(request);
        socket.write(encodeFrame(encodeResponseEnvelope({ id: request.id, status, message, payload })));
      }),
    );
  });
  peer.listen(0, '127.0.0.1');
  await once(peer, 'listening');
  return (peer.address() as AddressInfo).port;
}

describe('createProtobufClient', () => {
  it('sends the declared method name, the call deadline and the encoded request', async () => {
    const seen: RequestEnvelopeHead[] = [];
    const port = await scriptedPeer((request) => {
      seen.push(request);
      return { status: Status.OK, payload: new Uint8Array([0x08, 0x07]) }; // SleepReply { ms: 7 }
    });
    const client = createProtobufClient(service, { port, timeoutMs: 4_000 });
    try {
      expect(await client.sleep({ ms: 7 })).toMatchObject({ ms: 7 });
      expect(await client.sleep({ ms: 7 }, { timeoutMs: 1_234 })).toMatchObject({ ms: 7 });
    } finally {
      client.close();
    }
    expect(seen.map(({ method, deadlineMs }) => ({ method, deadlineMs }))).toEqual([
      { method: 'Sleep', deadlineMs: 4_000 },
      { method: 'Sleep', deadlineMs: 1_234 },
    ]);
    expect(new Set(seen.map(({ id }) => id)).size).toBe(2);
  });

  it('reads a status it does not know as UNKNOWN, keeping the number in the message', async () => {
    const port = await scriptedPeer(() => ({ status: 42, message: 'from the future' }));
    const client = createProtobufClient(service, { port });
    try {
      await expect(client.echo({})).rejects.toMatchObject({ status: Status.UNKNOWN, message: 'status 42: from the future' });
    } finally {
      client.close();
    }
  });

  it('rejects with INTERNAL when an OK reply does not decode as the response type', async () => {
    const port = await scriptedPeer(() => ({ status: Status.OK, payload: new Uint8Array([0x0a, 0xff]) }));
    const client = createProtobufClient(service, { port });
    try {
      await expect(client.getPrice({ sku: 'kb-001' })).rejects.toMatchObject({
        status: Status.INTERNAL,
        message: expect.stringMatching(/^cannot decode the Price reply of GetPrice/),
      });
    } finally {
      client.close();
    }
  });

  it('rejects with INTERNAL when a string in an OK reply declares more bytes than are left', async () => {
    // Price.sku "kb-001" declared 7 bytes long: protobufjs alone decodes it as "kb-001".
    const port = await scriptedPeer(() => ({ status: Status.OK, payload: Buffer.concat([Buffer.from([0x0a, 0x07]), Buffer.from('kb-001')]) }));
    const client = createProtobufClient(service, { port });
    try {
      await expect(client.getPrice({ sku: 'kb-001' })).rejects.toMatchObject({
        status: Status.INTERNAL,
        message: 'cannot decode the Price reply of GetPrice: ProtocolError: Price.sku: a 7-byte field overruns its message (6 bytes left)',
      });
    } finally {
      client.close();
    }
  });

  it('rejects with UNAVAILABLE when nothing listens', async () => {
    const port = await scriptedPeer(() => ({ status: Status.OK }));
    peer!.close(); // the port was free a moment ago and nobody listens on it now
    const client = createProtobufClient(service, { port });
    try {
      await expect(client.echo({})).rejects.toMatchObject({ name: 'RpcError', status: Status.UNAVAILABLE });
    } finally {
      client.close();
    }
  });

  it("refuses a service whose method would hide the client's close()", () => {
    const { root } = protobuf.parse(`
      syntax = "proto3";
      message Empty {}
      service Door { rpc Close(Empty) returns (Empty); }`);
    expect(() => createProtobufClient(root.lookupService('Door'), { port: 1 })).toThrow(/Door.Close would hide the client's own close\(\)/);
  });

  it('passes ktls to the core client, which refuses it without tls', () => {
    expect(() => createProtobufClient(service, { port: 1, ktls: 'require' })).toThrow(/ktls 'require' needs tls/);
  });

  it('passes ktlsKeyUpdateAfter to the core client, which checks it', () => {
    expect(() => createProtobufClient(service, { port: 1, ktlsKeyUpdateAfter: { records: 0 } })).toThrow(/ktlsKeyUpdateAfter.records must be a positive number, got 0/);
  });
});
