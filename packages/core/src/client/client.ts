import { once } from 'node:events';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ClientCodec } from '../codec/codec.js';
import { DeadlineExceededError, KmuxError } from '../errors.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../server/options.js';
import { FrameSplitter, encodeFrame } from '../framing/frame-splitter.js';
import { ktlsConnect, type KtlsInfo } from '../tls/handoff.js';
import { checkKeyUpdateLimits, type KeyUpdateLimits } from '../tls/key-update.js';
import { ktlsSupport } from '../tls/kernel-support.js';
import { KTLS_MODES, type KtlsMode } from '../tls/server-tls.js';

export interface ClientOptions {
  readonly host?: string;
  readonly port: number;
  readonly codec: ClientCodec;
  /**
   * Connect with TLS. The server certificate is verified against the system CAs (or `ca`)
   * unless you pass `rejectUnauthorized: false` explicitly.
   */
  readonly tls?: ConnectionOptions | true;
  /**
   * With `tls`: hand the connection to the kernel's TLS record layer once the handshake (and
   * the certificate check) is done. 'auto': where the kernel and the cipher allow, else
   * user-space TLS; 'require': fail the connect otherwise. Default 'off'.
   */
  readonly ktls?: KtlsMode;
  /**
   * With kTLS on Linux ≥ 6.14: start a TLS 1.3 KeyUpdate (asking the peer for one too) after
   * this many records or bytes sent under one key. Default: 2^24 records for AES-GCM
   * (RFC 8446 §5.5), none for ChaCha20-Poly1305. The peer's KeyUpdates are followed either way.
   */
  readonly ktlsKeyUpdateAfter?: KeyUpdateLimits;
  /** Default time a request may wait for its reply. Default 30 s. */
  readonly timeoutMs?: number;
  /**
   * Connection attempts per connect before giving up, with exponential backoff and full jitter
   * between them (a random delay below 50 ms, 100 ms, 200 ms, ... up to 2 s). Default 3.
   */
  readonly connectAttempts?: number;
  /** Largest reply frame accepted. Default 16 MiB. */
  readonly maxFrameBytes?: number;
}

export interface RequestOptions {
  readonly timeoutMs?: number;
}

/** How the current connection's TLS records are processed. */
export type ClientTlsState = { readonly ktls: true; readonly info: KtlsInfo } | { readonly ktls: false; readonly reason: string };

/** The byte stream under the client: net.Socket, TLSSocket or KtlsSocket. */
type ClientSocket = Duplex & { setNoDelay(noDelay?: boolean): unknown };

interface Pending {
  resolve(body: Buffer): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  /** The whole frame, kept to send again if a draining server refuses it unrun. */
  readonly frame: Buffer;
  /** The connection it was last sent on; null while it waits to be sent again. */
  socket: ClientSocket | null;
  resends: number;
}

/** Times a request refused unrun by draining servers is sent again before the refusal reaches the caller. */
const MAX_RESENDS = 3;
const BACKOFF_BASE_MS = 50;
const BACKOFF_MAX_MS = 2000;

/**
 * A pipelined client for any kmux codec: many requests in flight over one connection,
 * replies matched by id in whatever order they come. When the server ends the connection
 * (its FIN: a maximum connection age, a drain) the client stops sending on it at once, and
 * later requests go to a new connection; a request a draining server refused without running
 * it is sent again there (ClientCodec.notRun). Requests still unanswered when a connection
 * closes fail with `connection_closed`: the client cannot tell whether the server ran them.
 * Reconnects back off exponentially, with jitter.
 */
export class Client {
  private socket: ClientSocket | null = null;
  /** The current connection and retired ones still waiting for replies. */
  private readonly sockets = new Set<ClientSocket>();
  private connecting: Promise<ClientSocket> | null = null;
  private tlsState: ClientTlsState | null = null;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private readonly timeoutMs: number;
  private readonly host: string;

  constructor(private readonly options: ClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.host = options.host ?? '127.0.0.1';
    const ktls = options.ktls ?? 'off';
    if (!KTLS_MODES.includes(ktls)) throw new RangeError(`ktls must be one of ${KTLS_MODES.join(', ')}, got ${String(ktls)}`);
    if (ktls !== 'off' && !options.tls) throw new RangeError(`ktls '${ktls}' needs tls`);
    if (options.ktlsKeyUpdateAfter) checkKeyUpdateLimits(options.ktlsKeyUpdateAfter);
  }

  /** With TLS: whether the current (or last) connection runs its records in the kernel, or why not; null before connecting. */
  get tls(): ClientTlsState | null {
    return this.tlsState;
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
      const frame = encodeFrame(body);
      this.pending.set(id, { resolve, reject, timer, frame, socket, resends: 0 });
      socket.write(frame);
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
    for (const socket of this.sockets) socket.destroy();
    this.failAll(new KmuxError('connection_closed', 'client closed'));
  }

  private ensureConnected(): Promise<ClientSocket> {
    if (this.closed) return Promise.reject(new KmuxError('connection_closed', 'client closed'));
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= this.connectWithRetry().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connectWithRetry(): Promise<ClientSocket> {
    const attempts = this.options.connectAttempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.open();
      } catch (error) {
        if (attempt >= attempts || this.closed) {
          throw new KmuxError('connection_closed', `cannot connect to ${this.host}:${this.options.port}: ${String(error)}`, {
            cause: error,
          });
        }
        // Full jitter: clients cut off together (a server gone) must not come back together.
        const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
        await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
      }
    }
  }

  private async open(): Promise<ClientSocket> {
    const { port, tls } = this.options;
    // SNI takes host names only (RFC 6066); the certificate is still checked against an IP host.
    const tlsOptions = tls ? { ...(isIP(this.host) ? {} : { servername: this.host }), ...(tls === true ? {} : tls), host: this.host, port } : null;
    let socket: ClientSocket;
    if (!tlsOptions) {
      socket = await connected(connectTcp({ host: this.host, port }), 'connect');
    } else {
      const ktls = this.options.ktls ?? 'off';
      const support = ktls === 'off' ? null : ktlsSupport();
      if (support && (ktls === 'require' || support.available)) {
        // 'require' without kTLS fails in ktlsConnect, with the probe's reason.
        const connection = await ktlsConnect({ ...tlsOptions, ktls: ktls === 'require' ? 'require' : 'auto', support, keyUpdateAfter: this.options.ktlsKeyUpdateAfter });
        socket = connection.socket;
        this.tlsState = connection.kind === 'ktls' ? { ktls: true, info: connection.info } : { ktls: false, reason: connection.reason };
      } else {
        // Node's own TLS is faster than the record-exact handshake transport when nothing moves to the kernel.
        socket = await connected(connectTls(tlsOptions), 'secureConnect');
        this.tlsState = { ktls: false, reason: support ? `kTLS unavailable: ${support.reason}` : "kTLS off (ktls: 'off')" };
      }
    }
    socket.setNoDelay(true);
    const splitter = new FrameSplitter(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    socket.on('data', (chunk: Buffer) => {
      try {
        splitter.push(chunk, (body) => this.onReply(socket, body));
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    // The server's FIN: it reads nothing more from this connection (a graceful end sends it
    // after the replies to everything it read). Nothing more is sent on it.
    socket.on('end', () => this.retire(socket));
    socket.on('error', () => {}); // 'close' follows and fails what is pending.
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.retire(socket);
      this.failOn(socket, new KmuxError('connection_closed', 'connection closed before the reply'));
    });
    this.socket = socket;
    this.sockets.add(socket);
    return socket;
  }

  private onReply(socket: ClientSocket, body: Buffer): void {
    const { codec } = this.options;
    const id = codec.replyId(body);
    const pending = this.pending.get(id);
    if (!pending) return; // timed out already
    if (pending.resends < MAX_RESENDS && codec.notRun?.(body)) {
      // A draining server: leave it, and send the request to whichever server takes the new connection.
      pending.socket = null;
      this.retire(socket);
      pending.resends++;
      this.resend(id, pending, body);
      return;
    }
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(body);
    if (socket !== this.socket && !this.waitsOn(socket)) socket.end();
  }

  private waitsOn(socket: ClientSocket): boolean {
    for (const pending of this.pending.values()) if (pending.socket === socket) return true;
    return false;
  }

  /** Sends a refused request again on a new connection; if none can be made, the caller gets the refusal. */
  private resend(id: number, pending: Pending, refusal: Buffer): void {
    this.ensureConnected().then(
      (socket) => {
        if (this.pending.get(id) !== pending) return; // timed out meanwhile
        pending.socket = socket;
        socket.write(pending.frame);
      },
      () => {
        if (this.pending.get(id) !== pending) return;
        this.pending.delete(id);
        clearTimeout(pending.timer);
        pending.resolve(refusal);
      },
    );
  }

  /** New requests go to a new connection from now on; this one ends once its requests are answered (or it closes). */
  private retire(socket: ClientSocket): void {
    if (this.socket === socket) this.socket = null;
    if (!this.waitsOn(socket)) socket.end();
  }

  private failOn(socket: ClientSocket, error: KmuxError): void {
    for (const [id, pending] of this.pending) {
      if (pending.socket !== socket) continue;
      clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
  }

  private failAll(error: KmuxError): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
  }
}

async function connected<S extends Socket>(socket: S, event: 'connect' | 'secureConnect'): Promise<S> {
  await once(socket, event);
  return socket;
}
