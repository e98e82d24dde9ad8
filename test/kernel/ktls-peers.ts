// Peers and servers for the kTLS kernel tests (ktls-*.test.ts): a framed echo service on a
// kTLS socket, stock clients (openssl s_client, Node's tls), and a Node TLS client whose
// transport can flip a bit in its next application-data record.
import { spawn } from 'node:child_process';
import { connect as connectTcp, type Server } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as connectTls, createSecureContext, type TLSSocket } from 'node:tls';
import { encodeFrame, FrameSplitter } from '../../packages/core/src/framing/frame-splitter.js';
import { KtlsCounters } from '../../packages/core/src/tls/counters.js';
import { ktlsAccept, type KtlsServerOptions, type TlsConnection } from '../../packages/core/src/tls/handoff.js';
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
