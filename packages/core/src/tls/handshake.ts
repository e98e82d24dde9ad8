import { connect as connectTls, TLSSocket, type ConnectionOptions, type SecureContext, type TlsOptions } from 'node:tls';
import { FdTransport } from './fd-transport.js';
import { KeylogCapture } from './keylog.js';

/**
 * The TLS handshake in user space (node:tls, i.e. Node's OpenSSL) over an
 * FdTransport, stopped exactly at its end so that the record layer can move to
 * the kernel: the transport stops reading at the record that completed the
 * handshake, and the outcome carries what the handoff needs (secrets from the
 * keylog, every record on the wire, and any plaintext the library already
 * delivered).
 */

export type TlsSide = 'server' | 'client';

export interface HandshakeOutcome {
  readonly side: TlsSide;
  readonly socket: TLSSocket;
  readonly transport: FdTransport;
  readonly keylog: KeylogCapture;
  /** Application data the TLS library decrypted before the handoff point, in order. */
  readonly plaintext: Buffer[];
  /** The 'data' listener that fills `plaintext`: removed when user-space TLS goes on. */
  readonly capture: (chunk: Buffer) => void;
}

/** The node:tls server options that apply to one handshake (the rest are in the secure context). */
export type ServerHandshakeOptions = Pick<
  TlsOptions,
  'requestCert' | 'rejectUnauthorized' | 'ALPNProtocols' | 'SNICallback' | 'enableTrace'
> & {
  readonly secureContext: SecureContext;
  readonly timeoutMs?: number;
  /** Aborting ends the handshake at once (a server closing abandons handshakes in progress). */
  readonly signal?: AbortSignal;
};

export type ClientHandshakeOptions = Omit<ConnectionOptions, 'socket' | 'port' | 'path' | 'lookup'> & {
  readonly timeoutMs?: number;
};

const DEFAULT_TIMEOUT_MS = 10_000;

/** Runs the server side of the handshake on `transport`. Rejects (and destroys it) on failure. */
export function serverHandshake(transport: FdTransport, options: ServerHandshakeOptions): Promise<HandshakeOutcome> {
  const { secureContext, timeoutMs = DEFAULT_TIMEOUT_MS, requestCert = false, rejectUnauthorized = true } = options;
  const socket = new TLSSocket(transport, {
    isServer: true,
    secureContext,
    requestCert,
    rejectUnauthorized,
    ALPNProtocols: options.ALPNProtocols,
    SNICallback: options.SNICallback,
    enableTrace: options.enableTrace,
  });
  return run('server', socket, transport, 'secure', timeoutMs, options.signal, () => {
    // Without a tls.Server nobody else enforces this: Node's OpenSSL verify callback
    // accepts every certificate and leaves the verdict to JS.
    if (requestCert && rejectUnauthorized && !socket.authorized) {
      return socket.authorizationError ?? new Error('the client certificate was not authorized');
    }
    return null;
  });
}

/**
 * Runs the client side of the handshake on `transport`. The server certificate is
 * verified as tls.connect() verifies it (rejectUnauthorized defaults to true).
 */
export function clientHandshake(transport: FdTransport, options: ClientHandshakeOptions): Promise<HandshakeOutcome> {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, ...tlsOptions } = options;
  const socket = connectTls({ ...tlsOptions, socket: transport });
  // tls.connect() has verified the certificate (and destroyed the socket if it had to) before 'secureConnect'.
  return run('client', socket, transport, 'secureConnect', timeoutMs, undefined, () => null);
}

function run(
  side: TlsSide,
  socket: TLSSocket,
  transport: FdTransport,
  doneEvent: 'secure' | 'secureConnect',
  timeoutMs: number,
  signal: AbortSignal | undefined,
  verify: () => Error | null,
): Promise<HandshakeOutcome> {
  const keylog = new KeylogCapture(socket);
  const plaintext: Buffer[] = [];
  const capture = (chunk: Buffer): void => {
    plaintext.push(chunk);
  };
  socket.on('data', capture);
  return new Promise<HandshakeOutcome>((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      keylog.wipe();
      socket.destroy();
      transport.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`the TLS handshake took longer than ${timeoutMs} ms`)), timeoutMs);
    const abort = (): void => fail(new Error('the TLS handshake was abandoned: the server is closing'));
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('the connection closed during the TLS handshake')));
    socket.once(doneEvent, () => {
      // Synchronously, from inside the push of the record that completed the handshake:
      // the next record stays in the kernel.
      transport.stopReading();
      const refused = verify();
      if (refused) {
        fail(refused);
        return;
      }
      transport.settle().then(
        () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', abort);
          resolve({ side, socket, transport, keylog, plaintext, capture });
        },
        (error: Error) => fail(error),
      );
    });
  });
}
