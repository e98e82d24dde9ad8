// Peers and servers for the kTLS kernel tests (ktls-*.test.ts): a framed echo service on a
// kTLS socket, stock clients (openssl s_client, Node's tls), and a Node TLS client whose
// transport can flip a bit in its next application-data record.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { connect as connectTcp, type Server } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as connectTls, createSecureContext, type TLSSocket } from 'node:tls';
import { expect } from 'vitest';
// The Server comes built (its worker threads load dist/), like the other kernel tests' servers.
import { encodeRawRequest, rawCodec, RAW_STATUS, Server as KmuxServer, type ServerOptions, type TlsStat } from '@kmux/core';
import { decodeRawRequest, encodeRawReply } from '../../packages/core/src/codec/raw-wire.js';
import { encodeFrame, FrameSplitter } from '../../packages/core/src/framing/frame-splitter.js';
import { KtlsCounters } from '../../packages/core/src/tls/counters.js';
import { ktlsAccept, type KtlsServerOptions, type TlsConnection } from '../../packages/core/src/tls/handoff.js';
import { HANDLERS } from '../../packages/core/test/helpers.js';
import { pausedListener, pin, type SuiteCase } from '../../packages/core/test/tls/fixtures.js';

export const BYE = 'bye';

/**
 * Echoes each frame upper-cased; a frame "bye" gets "BYE" and then the server ends
 * its side (close_notify, then FIN). Works on a kTLS socket and on user-space TLS alike.
 */
export function serveFramedEcho(socket: NodeJS.ReadableStream & NodeJS.WritableStream & { end(): unknown }): void {
  const splitter = new FrameSplitter(1 << 20);
  socket.on('data', (chunk: Buffer) =>
    splitter.push(chunk, (body) => {
      socket.write(encodeFrame(Buffer.from(body.toString('latin1').toUpperCase(), 'latin1')));
      if (body.toString() === BYE) socket.end();
    }),
  );
  socket.on('end', () => socket.end());
}

export interface KtlsTestServer {
  readonly port: number;
  readonly counters: KtlsCounters;
  /** Each accepted connection, as the handoff gave it (or its error). */
  readonly connections: Array<Promise<TlsConnection>>;
  close(): void;
}

/** A listener that hands every connection to kTLS and serves the framed echo on it. */
export async function startKtlsServer(
  key: Buffer,
  cert: Buffer,
  suite: SuiteCase | null,
  options: Partial<KtlsServerOptions> = {},
): Promise<KtlsTestServer> {
  const counters = new KtlsCounters();
  const connections: Array<Promise<TlsConnection>> = [];
  const secureContext = createSecureContext({ key, cert, ...(suite ? pin(suite) : {}) });
  const { server, port } = await pausedListener((socket) => {
    const connection = ktlsAccept(socket, { secureContext, ktls: 'require', counters, ...options });
    connections.push(connection);
    connection.then(
      (c) => {
        c.socket.on('error', () => {}); // the tests read closeReason and the counters
        serveFramedEcho(c.socket);
      },
      () => {},
    );
  });
  return { port, counters, connections, close: () => (server as Server).close() };
}

/** Resolves once the stream has closed, at once if it already has ('close' is not replayed). */
export function whenClosed(stream: NodeJS.EventEmitter & { destroyed: boolean }): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

export function frames(bodies: readonly string[]): Buffer {
  return Buffer.concat(bodies.map((b) => encodeFrame(Buffer.from(b))));
}

export function parseFrames(data: Buffer): string[] {
  const out: string[] = [];
  new FrameSplitter(1 << 20).push(data, (body) => out.push(body.toString()));
  return out;
}

/** openssl s_client as a stock TLS peer: sends `input` after the handshake, returns what it received until the server closed. */
export function opensslClient(port: number, caFile: string, suite: SuiteCase, input: Buffer): Promise<{ stdout: Buffer; stderr: string; code: number | null }> {
  const suiteArgs = suite.version === 'TLSv1.3' ? ['-tls1_3', '-ciphersuites', suite.standardName] : ['-tls1_2', '-cipher', suite.ciphers];
  // -quiet: no session dump and no interactive commands (a line starting with Q or K would
  // be one); it implies -ign_eof, so s_client reads until the server closes.
  const child = spawn('openssl', [
    's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', caFile, '-verify_return_error', '-quiet',
    ...suiteArgs,
  ]);
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`openssl s_client did not finish: ${stderr}`));
    }, 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr, code });
    });
  });
}

export interface OpensslSession {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything the peer sent so far (s_client -quiet prints only that). */
  stdout(): Buffer;
  /** Resolves with s_client's exit code once the connection is over. */
  readonly exited: Promise<number | null>;
}

/**
 * openssl s_client with its interactive commands on (`-quiet -no_ign_eof`): a stdin chunk
 * "k\n" sends a TLS 1.3 KeyUpdate, "K\n" one that asks for the peer's in return. Frames
 * start with a zero byte, so they are never taken for a command; write a command only
 * after the previous chunk was consumed. Ending stdin closes the connection.
 */
export function opensslSession(port: number, caFile: string, suite: SuiteCase): OpensslSession {
  const suiteArgs = suite.version === 'TLSv1.3' ? ['-tls1_3', '-ciphersuites', suite.standardName] : ['-tls1_2', '-cipher', suite.ciphers];
  const child = spawn('openssl', [
    's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', caFile, '-verify_return_error',
    '-quiet', '-no_ign_eof', ...suiteArgs,
  ]);
  let out = Buffer.alloc(0);
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (out = Buffer.concat([out, d])));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) console.error(`openssl s_client exited ${code}: ${stderr}`);
      resolve(code);
    });
  });
  return { child, stdout: () => out, exited };
}

/**
 * A Node TLS client over a transport that, once armed, flips the last byte (inside the
 * AEAD tag) of the next application-data record it carries to the server.
 */
export function tamperingClient(port: number, ca: Buffer, suite: SuiteCase): { socket: TLSSocket; armTamper(): void } {
  const raw = connectTcp({ port, host: '127.0.0.1' });
  let armed = false;
  const transport = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      if (armed && chunk[0] === 23) {
        armed = false;
        const tampered = Buffer.from(chunk);
        tampered[tampered.length - 1]! ^= 0x01;
        raw.write(tampered, callback);
      } else {
        raw.write(chunk, callback);
      }
    },
    final(callback) {
      raw.end(callback);
    },
  });
  raw.on('data', (d: Buffer) => transport.push(d));
  raw.on('end', () => transport.push(null));
  raw.on('error', (e) => transport.destroy(e));
  const socket = connectTls({ socket: transport, servername: 'localhost', ca, ...pin(suite) });
  return { socket, armTamper: () => (armed = true) };
}

// ---- a kmux Server on kTLS (ktls-server*.test.ts) ----------------------------------------

/** The transports that serve kTLS connections: user space (a KtlsSocket per connection) and native (the I/O thread). */
export const KTLS_TRANSPORTS = ['userspace', 'native'] as const;

export const quiet = { info: () => {}, warn: () => {}, error: console.error };

/** A kmux Server with the raw codec (the core tests' handlers: echo, upper, ...) serving TLS pinned to `suite`. */
export async function startKmuxTlsServer(
  key: Buffer,
  cert: Buffer,
  suite: SuiteCase | null,
  options: Partial<ServerOptions> = {},
): Promise<{ server: KmuxServer; port: number }> {
  const server = new KmuxServer({
    codec: rawCodec({ handler: HANDLERS }),
    workers: 1,
    tls: { key, cert, ...(suite ? pin(suite) : {}) },
    ktls: 'require',
    logger: quiet,
    ...options,
  });
  const { port } = await server.listen();
  return { server, port };
}

/** Raw-codec `method` requests, one per payload, ids from 1, framed back to back. */
export function rawRequests(method: string, payloads: readonly string[]): Buffer {
  return Buffer.concat(payloads.map((p, i) => encodeFrame(encodeRawRequest(i + 1, method, Buffer.from(p)))));
}

/** The raw replies in a byte stream, in id order (replies may come in any order): their payloads. */
export function rawReplyPayloads(data: Buffer): string[] {
  const replies: Array<[number, string]> = [];
  new FrameSplitter(1 << 20).push(data, (body) => {
    expect(body[4], `reply ${body.readUInt32BE(0)} status`).toBe(RAW_STATUS.ok);
    replies.push([body.readUInt32BE(0), body.subarray(5).toString()]);
  });
  return replies.sort((a, b) => a[0] - b[0]).map(([, payload]) => payload);
}

/** Answers raw requests found in `data` as `upper` would: the reply frames, for a peer that is not kmux. */
export function upperReplies(data: Buffer): { requests: string[]; replies: Buffer } {
  const requests: string[] = [];
  const replies: Buffer[] = [];
  new FrameSplitter(1 << 20).push(data, (body) => {
    const request = decodeRawRequest(body);
    requests.push(`${request.method} ${request.payload.toString()}`);
    replies.push(encodeFrame(encodeRawReply(request.id, RAW_STATUS.ok, Buffer.from(request.payload.toString().toUpperCase()))));
  });
  return { requests, replies: Buffer.concat(replies) };
}

export function statDelta(before: TlsStat, after: TlsStat, name: string): number {
  return (after[name] ?? NaN) - (before[name] ?? NaN);
}

export interface OpensslServer {
  readonly port: number;
  readonly child: ChildProcessWithoutNullStreams;
  /** What the client sent, once the session banner is past. */
  received(): Buffer;
}

/**
 * `openssl s_server` as a stock TLS server for one connection: what the client sends
 * comes out on its stdout after the session banner; what is written to its stdin goes
 * to the client. (Not -quiet: it would hide the port; a stdin chunk starting with a
 * letter such as Q or K is a command, so only frames, which start with a zero byte, go in.)
 */
export async function opensslServer(certFile: string, keyFile: string, suite: SuiteCase): Promise<OpensslServer> {
  const suiteArgs = suite.version === 'TLSv1.3' ? ['-tls1_3', '-ciphersuites', suite.standardName] : ['-tls1_2', '-cipher', suite.ciphers];
  const child = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', '-naccept', '1', '-cert', certFile, '-key', keyFile, ...suiteArgs]);
  let out = Buffer.alloc(0);
  child.stdout.on('data', (d: Buffer) => (out = Buffer.concat([out, d])));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`openssl s_server did not start: ${out.toString()}`)), 60_000);
    const look = (): void => {
      const m = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(out.toString('latin1'));
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', look);
      resolve(Number(m[1]));
    };
    child.stdout.on('data', look);
    child.once('error', reject);
  });
  const banner = /Secure Renegotiation IS (NOT )?supported\n/;
  return {
    port,
    child,
    received: () => {
      const text = out.toString('latin1');
      const m = banner.exec(text);
      return m ? out.subarray(m.index + m[0].length) : Buffer.alloc(0);
    },
  };
}
