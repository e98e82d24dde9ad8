import { once } from 'node:events';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import type { ClientCodec } from '../codec/codec.js';
import { DeadlineExceededError, KmuxError } from '../errors.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../server/options.js';
import { FrameSplitter, encodeFrame } from '../framing/frame-splitter.js';

export interface ClientOptions {
  readonly host?: string;
  readonly port: number;
  readonly codec: ClientCodec;
  /**
   * Connect with TLS. The server certificate is verified against the system CAs (or `ca`)
   * unless you pass `rejectUnauthorized: false` explicitly.
   */
  readonly tls?: ConnectionOptions | true;
  /** Default time a request may wait for its reply. Default 30 s. */
  readonly timeoutMs?: number;
  /** Connection attempts per connect before giving up, with doubling delays from 50 ms. Default 3. */
  readonly connectAttempts?: number;
  /** Largest reply frame accepted. Default 16 MiB. */
  readonly maxFrameBytes?: number;
}

export interface RequestOptions {
  readonly timeoutMs?: number;
}

interface Pending {
  resolve(body: Buffer): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A pipelined client for any kmux codec: many requests in flight over one connection,
 * replies matched by id in whatever order they come. After the connection drops, the
 * requests on it fail with `connection_closed` and the next request reconnects.
 */
export class Client {
  private socket: Socket | null = null;
  private connecting: Promise<Socket> | null = null;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private readonly timeoutMs: number;
  private readonly host: string;

  constructor(private readonly options: ClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.host = options.host ?? '127.0.0.1';
  }

  /** Requests waiting for their reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Connects now; optional, since requests connect on demand. */
  async connect(): Promise<void> {
    await this.ensureConnected();
  }

  /** Sends a request frame body with id `id` and resolves with the reply frame body. */
  async request(id: number, body: Uint8Array, { timeoutMs = this.timeoutMs }: RequestOptions = {}): Promise<Buffer> {
    if (this.pending.has(id)) throw new RangeError(`request id ${id} is already in flight`);
    const socket = await this.ensureConnected();
    // Again after the await: another request may have taken the id meanwhile.
    if (this.pending.has(id)) throw new RangeError(`request id ${id} is already in flight`);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DeadlineExceededError(`request ${id}`, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      socket.write(encodeFrame(body));
    });
  }

  /** Sends a frame that expects no reply (Thrift oneway). */
  async send(body: Uint8Array): Promise<void> {
    const socket = await this.ensureConnected();
    socket.write(encodeFrame(body));
  }

  /** Closes the connection; requests in flight fail with `connection_closed`. */
  close(): void {
    this.closed = true;
    this.socket?.destroy();
    this.failAll(new KmuxError('connection_closed', 'client closed'));
  }

  private ensureConnected(): Promise<Socket> {
    if (this.closed) return Promise.reject(new KmuxError('connection_closed', 'client closed'));
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= this.connectWithRetry().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connectWithRetry(): Promise<Socket> {
    const attempts = this.options.connectAttempts ?? 3;
    let delay = 50;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.open();
      } catch (error) {
        if (attempt >= attempts || this.closed) {
          throw new KmuxError('connection_closed', `cannot connect to ${this.host}:${this.options.port}: ${String(error)}`, {
            cause: error,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay *= 2;
      }
    }
  }

  private async open(): Promise<Socket> {
    const { port, tls } = this.options;
    const socket = tls
      ? connectTls({
          // SNI takes host names only (RFC 6066); the certificate is still checked against an IP host.
          ...(isIP(this.host) ? {} : { servername: this.host }),
          ...(tls === true ? {} : tls),
          host: this.host,
          port,
        })
      : connectTcp({ host: this.host, port });
    await once(socket, tls ? 'secureConnect' : 'connect');
    socket.setNoDelay(true);
    const splitter = new FrameSplitter(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    socket.on('data', (chunk: Buffer) => {
      try {
        splitter.push(chunk, (body) => this.onReply(body));
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    socket.on('error', () => {}); // 'close' follows and fails what is pending.
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.failAll(new KmuxError('connection_closed', 'connection closed before the reply'));
    });
    this.socket = socket;
    return socket;
  }

  private onReply(body: Buffer): void {
    const id = this.options.codec.replyId(body);
    const pending = this.pending.get(id);
    if (!pending) return; // timed out already
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(body);
  }

  private failAll(error: KmuxError): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
  }
}
