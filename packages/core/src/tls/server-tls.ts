import { createServer as createTcpServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, createServer as createTlsServer, type SecureContextOptions, type TlsOptions } from 'node:tls';
import { KtlsCounters, type KtlsCountersSnapshot } from './counters.js';
import { KtlsUnavailableError } from './errors.js';
import { ktlsAccept, KtlsHandoffError, type KtlsServerOptions } from './handoff.js';
import type { KeyUpdateLimits } from './key-update.js';
import { ktlsSupport, type KtlsSupport } from './kernel-support.js';

/**
 * The server's TLS front end: a user-space handshake on every connection, then the
 * record layer in the kernel (kTLS) where it can go, else user-space TLS, counted
 * with the reason. Framing always runs in user space on the resulting plaintext
 * stream: KCM over kTLS loses or corrupts frames on Debian's 6.1 and 6.12 and
 * sockmap sees records, not frames (measured; see README.md in this directory).
 */

/** 'off': user-space TLS; 'auto': kTLS where the kernel and the cipher allow, else user space; 'require': kTLS or nothing. */
export type KtlsMode = 'off' | 'auto' | 'require';

export const KTLS_MODES: readonly KtlsMode[] = ['off', 'auto', 'require'];

/** How this server runs TLS, decided at listen(). */
export interface TlsReport {
  readonly requested: KtlsMode;
  /** Connections are handed to kTLS after the handshake. */
  readonly ktls: boolean;
  /** Why: the kernel probe's line (what kTLS offers here, or the failing call and errno), or the option. */
  readonly reason: string;
}

/** stats().tls: the report plus what happened to each TLS connection. */
export interface TlsStatsSnapshot extends TlsReport, KtlsCountersSnapshot {
  /** Connections in their handshake now (kTLS path; node:tls keeps its own). */
  readonly handshaking: number;
}

export type ServerTlsOptions = TlsOptions & SecureContextOptions;

/** A connection's plaintext stream, ready for framing: a net.Socket, a TLSSocket or a KtlsSocket. */
export type PlaintextSocket = Duplex & {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  setNoDelay(noDelay?: boolean): unknown;
  setTimeout(ms: number): unknown;
};

export interface TlsFrontHooks {
  /** Whether one more connection may start (maxConnections, closing); false: it is closed at once. */
  admit(): boolean;
  /** The handshake (and handoff) is done: serve the plaintext stream. */
  serve(socket: PlaintextSocket): void;
  /** The connection was closed before it could be served; `kind` is the connection-error stats key. */
  failed(kind: 'tls_handshake' | 'ktls_handoff', error: Error): void;
}

/** Decides at listen() whether connections go to kTLS; throws KtlsUnavailableError for 'require' without it. */
export function planServerTls(requested: KtlsMode, support: KtlsSupport = ktlsSupport()): TlsReport {
  if (requested === 'off') return { requested, ktls: false, reason: "kTLS off (ktls: 'off')" };
  if (!support.available) {
    if (requested === 'require') throw new KtlsUnavailableError(support.reason);
    return { requested, ktls: false, reason: `kTLS unavailable: ${support.reason}` };
  }
  return { requested, ktls: true, reason: support.reason };
}

export class ServerTls {
  readonly counters = new KtlsCounters();
  private handshakes = 0;
  private readonly closing = new AbortController();

  constructor(
    readonly report: TlsReport,
    private readonly tls: ServerTlsOptions,
    private readonly keyUpdateAfter?: KeyUpdateLimits,
  ) {}

  /** Connections in their handshake: they count against maxConnections. */
  get handshaking(): number {
    return this.handshakes;
  }

  /** Abandons the handshakes in progress (their connections close); the listener is closed by its owner. */
  close(): void {
    this.closing.abort();
  }

  snapshot(): TlsStatsSnapshot {
    return { ...this.report, ...this.counters.snapshot(), handshaking: this.handshakes };
  }

  createListener(hooks: TlsFrontHooks): NetServer {
    return this.report.ktls ? this.ktlsListener(hooks) : this.userspaceListener(hooks);
  }

  /** node:tls as is: the fast path when no connection can go to the kernel. */
  private userspaceListener(hooks: TlsFrontHooks): NetServer {
    const reason = this.report.requested === 'off' ? 'ktls_off' : 'ktls_unavailable';
    // Half-open only once a socket is ours: a peer that leaves mid-handshake must not
    // linger half-open, uncounted, keeping close() from completing.
    const listener = createTlsServer(this.tls, (socket) => {
      if (!hooks.admit()) {
        socket.destroy();
        return;
      }
      socket.allowHalfOpen = true;
      this.counters.count('userspace', reason);
      hooks.serve(socket);
    });
    listener.on('tlsClientError', (error: Error, socket: Socket) => {
      socket.destroy();
      hooks.failed('tls_handshake', error);
    });
    return listener;
  }

  /** Accepts without reading (the handshake reads record by record), then hands off. */
  private ktlsListener(hooks: TlsFrontHooks): NetServer {
    const { tls } = this;
    const options: KtlsServerOptions = {
      secureContext: createSecureContext(tls),
      requestCert: tls.requestCert,
      rejectUnauthorized: tls.rejectUnauthorized,
      ALPNProtocols: tls.ALPNProtocols,
      SNICallback: tls.SNICallback,
      // node:tls's default, so the option means the same on both paths.
      timeoutMs: tls.handshakeTimeout ?? 120_000,
      ktls: this.report.requested === 'require' ? 'require' : 'auto',
      counters: this.counters,
      keyUpdateAfter: this.keyUpdateAfter,
      allowHalfOpen: true,
      signal: this.closing.signal,
    };
    return createTcpServer({ pauseOnConnect: true }, (socket) => {
      if (!hooks.admit()) {
        socket.destroy();
        return;
      }
      this.handshakes++;
      ktlsAccept(socket, options).then(
        (connection) => {
          this.handshakes--;
          // A fallback TLSSocket: as on the node:tls path.
          if (connection.kind === 'userspace') connection.socket.allowHalfOpen = true;
          hooks.serve(connection.socket);
        },
        (error: unknown) => {
          this.handshakes--;
          const failure = error instanceof Error ? error : new Error(String(error));
          const handshake = error instanceof KtlsHandoffError && error.code === 'handshake';
          hooks.failed(handshake ? 'tls_handshake' : 'ktls_handoff', failure);
        },
      );
    });
  }
}
