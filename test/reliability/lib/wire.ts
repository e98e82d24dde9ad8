/**
 * What the reliability suites need of a codec, for the raw codec and for Thrift (binary and
 * compact) on the example Catalog service: a server codec, request frames with a known
 * answer, and a strict reply reader that tells a correct answer from a typed error.
 * Thrift requests are encoded by hand for speed (the suites send millions); wire.test.ts
 * checks them byte for byte against the generated client, and replies are read with the
 * stock library and the generated client.
 */
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { FrameSplitter, KmuxError, decodeRawReply, encodeRawRequest, rawCodec, type ServerCodec } from '@kmux/core';
import { readMessageHead, thriftCodec } from '@kmux/thrift';

export const EXAMPLE_DIR = fileURLToPath(new URL('../../../examples/thrift/', import.meta.url));
export const RAW_HANDLER = fileURLToPath(new URL('../fixtures/raw-handler.mjs', import.meta.url));
export const CATALOG_CHAOS_HANDLER = fileURLToPath(new URL('../fixtures/catalog-chaos-handler.cjs', import.meta.url));
const requireExample = createRequire(EXAMPLE_DIR);
export const thrift: any = requireExample('thrift');
export const Catalog: any = requireExample('./gen-nodejs/Catalog.js');

export type WireName = 'raw' | 'thrift-binary' | 'thrift-compact';

export interface Decoded {
  readonly id: number;
  readonly ok: boolean;
  /** The answer, when ok. */
  readonly payload?: Buffer;
  /** The kmux error kind, when not ok. */
  readonly kind?: string;
  readonly message?: string;
}

export interface Wire {
  readonly name: WireName;
  serverCodec(): ServerCodec;
  /** A request whose correct answer is answerFor(payload). */
  work(id: number, payload: Buffer): Buffer;
  answerFor(payload: Buffer): Buffer;
  /** A request that kills the worker running it. */
  crash(id: number): Buffer;
  /** A request costing about `micros` µs of worker CPU (raw) or `micros / 2.5` hash rounds (Thrift). */
  spin(id: number, micros: number): Buffer;
  /** Reads a reply body; throws if it is not a well-formed reply of this protocol. */
  decode(body: Buffer): Decoded;
  /** Largest request id the wire carries. */
  readonly maxId: number;
}

// ---- raw ---------------------------------------------------------------------------------

const rawWire: Wire = {
  name: 'raw',
  maxId: 0xffffffff,
  serverCodec: () => rawCodec({ handler: RAW_HANDLER }),
  work: (id, payload) => encodeRawRequest(id, 'work', payload),
  answerFor: (payload) => Buffer.concat([payload, Buffer.from('/ok')]),
  crash: (id) => encodeRawRequest(id, 'crash', Buffer.alloc(0)),
  spin: (id, micros) => {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(micros, 0);
    payload.writeUInt32BE(id >>> 0, 4);
    return encodeRawRequest(id, 'spin', payload);
  },
  decode(body) {
    if (body.length < 5) throw new Error(`raw reply of ${body.length} bytes`);
    const id = body.readUInt32BE(0);
    try {
      return { id, ok: true, payload: decodeRawReply(body) };
    } catch (error) {
      if (!(error instanceof KmuxError)) throw error;
      return { id, ok: false, kind: error.kind, message: error.message };
    }
  },
};

// ---- thrift ------------------------------------------------------------------------------

type Protocol = 'binary' | 'compact';

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value >>> 0;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function i32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeInt32BE(value, 0);
  return out;
}

/** A CALL of `name` with a binary field 1 and, optionally, an i32 field 2. */
function encodeThriftCall(protocol: Protocol, name: string, seqid: number, data: Buffer, field2?: number): Buffer {
  const nameBytes = Buffer.from(name);
  if (protocol === 'binary') {
    return Buffer.concat([
      i32(0x80010001 | 0),
      i32(nameBytes.length),
      nameBytes,
      i32(seqid),
      Buffer.from([0x0b, 0x00, 0x01]),
      i32(data.length),
      data,
      ...(field2 === undefined ? [] : [Buffer.from([0x08, 0x00, 0x02]), i32(field2)]),
      Buffer.from([0x00]),
    ]);
  }
  return Buffer.concat([
    Buffer.from([0x82, 0x21]),
    varint(seqid),
    varint(nameBytes.length),
    nameBytes,
    Buffer.from([0x18]),
    varint(data.length),
    data,
    ...(field2 === undefined ? [] : [Buffer.from([0x15]), varint(((field2 << 1) ^ (field2 >> 31)) >>> 0)]),
    Buffer.from([0x00]),
  ]);
}

const KIND_BY_PREFIX: readonly [string, string][] = [
  ['overloaded, retry later: ', 'overloaded'],
  ['deadline exceeded: ', 'deadline_exceeded'],
  ['worker died: ', 'worker_died'],
  ['shutting down: ', 'shutting_down'],
  ['bad request: ', 'bad_request'],
];

function thriftWire(protocol: Protocol): Wire {
  const Protocol = protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol;
  const client = new Catalog.Client(new thrift.TBufferedTransport(undefined, () => {}), Protocol);
  return {
    name: `thrift-${protocol}`,
    maxId: 0x7fffffff,
    serverCodec: () => thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: CATALOG_CHAOS_HANDLER, protocol }),
    work: (id, payload) => encodeThriftCall(protocol, 'echo', id, payload),
    answerFor: (payload) => payload,
    crash: (id) => encodeThriftCall(protocol, 'echo', id, Buffer.from('crash!')),
    spin: (id, micros) => encodeThriftCall(protocol, 'hashRounds', id, i32(id), Math.max(1, Math.round(micros / 2.5))),
    decode(body) {
      const head = readMessageHead(body, protocol);
      const transport = new thrift.TFramedTransport(body);
      const input = new Protocol(transport);
      const begin = input.readMessageBegin();
      let decoded: Decoded;
      if (head.type === 3) {
        const exception = new thrift.Thrift.TApplicationException();
        exception.read(input);
        input.readMessageEnd();
        const message: string = exception.message;
        const prefixed = KIND_BY_PREFIX.find(([prefix]) => message.startsWith(prefix));
        const kind = prefixed ? prefixed[1] : exception.type === 1 ? 'unknown_method' : exception.type === 7 ? 'protocol' : 'handler';
        decoded = { id: head.seqid, ok: false, kind, message };
      } else if (head.type === 2) {
        let outcome: { error: unknown; value: unknown } | undefined;
        client._reqs[begin.rseqid] = (error: unknown, value: unknown) => (outcome = { error, value });
        client[`recv_${head.name}`](input, begin.mtype, begin.rseqid);
        if (!outcome) throw new Error(`recv_${head.name} gave no outcome`);
        decoded = outcome.error
          ? { id: head.seqid, ok: false, kind: 'declared', message: String((outcome.error as Error).message ?? outcome.error) }
          : { id: head.seqid, ok: true, payload: outcome.value as Buffer };
      } else {
        throw new Error(`reply of message type ${head.type}`);
      }
      if (transport.readPos !== body.length) throw new Error(`${body.length - transport.readPos} bytes after the reply message`);
      return decoded;
    },
  };
}

export const WIRES: Readonly<Record<WireName, Wire>> = {
  raw: rawWire,
  'thrift-binary': thriftWire('binary'),
  'thrift-compact': thriftWire('compact'),
};

// ---- sockets -----------------------------------------------------------------------------

/** A client TCP connection that writes raw bytes and hands over each reply frame body. */
export class FrameSocket {
  readonly closed: Promise<void>;
  /** Resolves once the server has finished its side (FIN, or the connection is gone). */
  readonly ended: Promise<void>;
  /** The server ended its side (FIN) or the connection closed. */
  serverEnded = false;
  isClosed = false;
  closedAt = 0;
  /** performance.now() when the server's FIN (or the close) arrived. */
  endedAt = 0;
  onFrame: (body: Buffer) => void = () => {};
  private readonly splitter = new FrameSplitter(64 * 1024 * 1024);

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => this.splitter.push(chunk, (body) => this.onFrame(Buffer.from(body))));
    let resolveEnded: () => void = () => {};
    this.ended = new Promise((resolve) => (resolveEnded = resolve));
    const onEnded = (): void => {
      if (this.endedAt === 0) this.endedAt = performance.now();
      resolveEnded();
    };
    socket.on('end', () => {
      this.serverEnded = true;
      onEnded();
    });
    socket.once('close', onEnded);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.serverEnded = true;
        this.closedAt = performance.now();
        resolve();
      }),
    );
  }

  static async open(port: number, { allowHalfOpen = true }: { allowHalfOpen?: boolean } = {}): Promise<FrameSocket> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen });
    await Promise.race([
      once(socket, 'connect'),
      once(socket, 'error').then(([error]) => {
        throw error;
      }),
    ]);
    return new FrameSocket(socket);
  }

  write(bytes: Uint8Array): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /** Half-closes: no more requests, replies still come. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The sockets a suite's tests open, destroyed together after each test. */
export class OpenSockets {
  private readonly sockets: FrameSocket[] = [];

  readonly open = async (port: number): Promise<FrameSocket> => {
    const socket = await FrameSocket.open(port);
    this.sockets.push(socket);
    return socket;
  };

  destroyAll(): void {
    for (const socket of this.sockets.splice(0)) socket.destroy();
  }
}
