/**
 * Shared helpers for the core tests: servers on real TCP with the raw codec and the
 * handlers in fixtures/handlers.mjs, raw sockets that speak frames by hand, gates that
 * let a test hold a handler mid-request, and a poller. Call `cleanup()` in afterEach (or
 * afterAll for a server shared by a file).
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import {
  FrameSplitter,
  KmuxError,
  RawClient,
  Server,
  decodeRawReply,
  encodeFrame,
  encodeRawRequest,
  rawCodec,
  type ClientOptions,
  type Logger,
  type ServerOptions,
} from '@kmux/core';

export const HANDLERS = fileURLToPath(new URL('./fixtures/handlers.mjs', import.meta.url));
const GATE_CHANNEL = 'kmux-core-test-gate';

/** A logger that keeps what it is told, for assertions, and prints nothing. */
export interface CapturingLogger extends Logger {
  readonly lines: { level: 'info' | 'warn' | 'error'; message: string }[];
  text(level: 'info' | 'warn' | 'error'): string;
}

export function capturingLogger(): CapturingLogger {
  const lines: CapturingLogger['lines'] = [];
  return {
    lines,
    info: (message) => lines.push({ level: 'info', message }),
    warn: (message) => lines.push({ level: 'warn', message }),
    error: (message) => lines.push({ level: 'error', message }),
    text: (level) =>
      lines
        .filter((line) => line.level === level)
        .map((line) => line.message)
        .join('\n'),
  };
}

const servers = new Set<Server>();
const clients = new Set<RawClient>();
const sockets = new Set<Socket>();
const openGates = new Set<string>();

export interface Started {
  readonly server: Server;
  readonly port: number;
  readonly logger: CapturingLogger;
  /** A RawClient for the server (it connects on its first call). */
  readonly client: RawClient;
  /** Another RawClient (its own connection), closed by cleanup(). */
  newClient(options?: Partial<Omit<ClientOptions, 'codec'>>): RawClient;
}

/** Starts a 2-worker raw-codec server on 127.0.0.1 with a capturing logger, plus one client. */
export async function startServer(options: Partial<ServerOptions> = {}): Promise<Started> {
  const logger = capturingLogger();
  const server = new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 2, transport: 'userspace', logger, ...options });
  servers.add(server);
  const { port } = await server.listen();
  const newClient = (clientOptions: Partial<Omit<ClientOptions, 'codec'>> = {}): RawClient => {
    const client = new RawClient({ port, timeoutMs: 10_000, ...clientOptions });
    clients.add(client);
    return client;
  };
  return { server, port, logger, client: newClient(), newClient };
}

/** Has cleanup() close a server made by hand. */
export function track(server: Server): Server {
  servers.add(server);
  return server;
}

/** Releases held handlers, closes clients and sockets, then stops the servers without waiting for requests. */
export async function cleanup(): Promise<void> {
  for (const tag of openGates) release(tag);
  for (const client of clients) client.close();
  clients.clear();
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  const closing = [...servers];
  servers.clear();
  // Bounded, so that a server bug that hangs close() fails the suite instead of stalling it.
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), 5000);
  });
  const outcome = await Promise.race([Promise.all(closing.map((server) => server.close({ timeoutMs: 0 }))), hung]);
  clearTimeout(timer);
  if (outcome === 'hung') throw new Error('server.close() did not resolve within 5 s');
}

// ---- gates -----------------------------------------------------------------------------

let gateChannel: BroadcastChannel | null = null;
/** Tag → thread id of the worker that started it. */
const startedTags = new Map<string, number>();
const startWaiters = new Map<string, (threadId: number) => void>();
let nextTag = 0;

/** What a gated handler announces once it has started (fixtures/handlers.mjs). */
interface StartedMessage {
  readonly started: string;
  readonly threadId: number;
}

function isStartedMessage(data: unknown): data is StartedMessage {
  return (
    typeof data === 'object' &&
    data !== null &&
    'started' in data &&
    typeof data.started === 'string' &&
    'threadId' in data &&
    typeof data.threadId === 'number'
  );
}

function channel(): BroadcastChannel {
  if (!gateChannel) {
    gateChannel = new BroadcastChannel(GATE_CHANNEL);
    gateChannel.unref();
    gateChannel.onmessage = (event) => {
      const data: unknown = event.data;
      if (!isStartedMessage(data)) return;
      startedTags.set(data.started, data.threadId);
      startWaiters.get(data.started)?.(data.threadId);
    };
  }
  return gateChannel;
}

/** A fresh tag for a gated handler (wait, spin, exit); payload of the request. */
export function gateTag(name = 'gate'): string {
  channel();
  const tag = `${name}-${process.pid}-${++nextTag}`;
  openGates.add(tag);
  return tag;
}

/** Resolves, with the worker's thread id, once a handler has started working on `tag`. */
export function started(tag: string): Promise<number> {
  channel();
  const threadId = startedTags.get(tag);
  if (threadId !== undefined) return Promise.resolve(threadId);
  return new Promise((resolve) => startWaiters.set(tag, resolve));
}

/** Lets the handler holding `tag` finish. */
export function release(tag: string): void {
  openGates.delete(tag);
  channel().postMessage({ release: tag });
}

// ---- raw sockets -----------------------------------------------------------------------

/** A plain TCP connection that writes frames by hand and collects the reply frame bodies. */
export class RawConnection {
  readonly replies: Buffer[] = [];
  readonly closed: Promise<void>;
  private readonly splitter = new FrameSplitter(64 * 1024 * 1024);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) =>
      this.splitter.push(chunk, (body) => {
        this.replies.push(Buffer.from(body));
        for (const wake of this.waiters.splice(0)) wake();
      }),
    );
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        for (const wake of this.waiters.splice(0)) wake();
        resolve();
      }),
    );
  }

  static async open(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<RawConnection> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false });
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  /** Writes one raw-codec request frame. */
  request(id: number, method: string, payload: string | Uint8Array = ''): boolean {
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    return this.socket.write(encodeFrame(encodeRawRequest(id, method, bytes)));
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Resolves once `count` replies have arrived; rejects if the connection closes first. */
  async waitReplies(count: number): Promise<Buffer[]> {
    while (this.replies.length < count) {
      if (this.socket.destroyed || this.socket.readableEnded) {
        throw new Error(`connection closed after ${this.replies.length} of ${count} replies`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.replies;
  }
}

/** Splits a raw reply body into its id and its payload (or the error it carries). */
export function parseReply(body: Buffer): { id: number; payload?: string; error?: KmuxError } {
  const id = body.readUInt32BE(0);
  try {
    return { id, payload: decodeRawReply(body).toString('utf8') };
  } catch (error) {
    return { id, error: error as KmuxError };
  }
}

// ---- misc ------------------------------------------------------------------------------

/** Polls `condition` until it holds; for state changes with no event to wait on. */
export async function until(condition: () => boolean, what = 'condition', timeoutMs = 10_000): Promise<void> {
  const giveUp = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The KmuxError a promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<KmuxError> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${String(value)}`);
  } catch (error) {
    if (!(error instanceof KmuxError)) throw error;
    return error;
  }
}
