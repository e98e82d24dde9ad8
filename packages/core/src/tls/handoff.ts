import { once } from 'node:events';
import { connect as connectTcp, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { nativeKtls } from '@kmux/native';
import type { TlsVersionName } from './cipher-suites.js';
import type { KtlsCounters } from './counters.js';
import { FdTransport } from './fd-transport.js';
import {
  clientHandshake,
  serverHandshake,
  type ClientHandshakeOptions,
  type HandshakeOutcome,
  type ServerHandshakeOptions,
} from './handshake.js';
import { KeyUpdater, type KeyUpdateLimits } from './key-update.js';
import { HandoffDeclined, planHandoff, type KtlsPlan } from './ktls-plan.js';
import { KtlsSocket } from './ktls-socket.js';
import { ktlsSupport, type KtlsSupport } from './kernel-support.js';
import { takeSocketFd, type TakenSocket } from './socket-fd.js';

/**
 * The kTLS handoff: a user-space handshake (node:tls), then the record layer in
 * the kernel. See README.md in this directory for the mechanism and its limits.
 */

/** 'auto': kTLS where the negotiated cipher allows, else user-space TLS (counted); 'require': else close. */
export type KtlsHandoffMode = 'auto' | 'require';

export interface KtlsHandoffOptions {
  readonly ktls: KtlsHandoffMode;
  readonly counters?: KtlsCounters;
  /** For the kTLS socket: keep writing after the peer's close_notify. Default false. */
  readonly allowHalfOpen?: boolean;
  /**
   * TLS 1.3 KeyUpdate: 'rekey' keeps the traffic secrets to install the next keys (needs
   * Linux ≥ 6.14, else a KeyUpdate from the peer closes the connection with the kernel's
   * EBUSY); 'close' zeroes them at the handoff and a KeyUpdate closes the connection. Either
   * way the replies to requests read before it are written first. Default: 'rekey' exactly
   * where the kernel can (support.rekey).
   */
  readonly keyUpdate?: 'rekey' | 'close';
  /** With 'rekey': start our own KeyUpdate after this many records or bytes sent under one key (default: per cipher, key-update.ts). */
  readonly keyUpdateAfter?: KeyUpdateLimits;
  /** What the kernel takes; default ktlsSupport(), probed once per thread. */
  readonly support?: KtlsSupport;
}

export interface KtlsInfo {
  readonly version: TlsVersionName;
  readonly cipher: string;
  readonly standardName: string;
  /** Sequence numbers the kernel started at. */
  readonly txSeq: bigint;
  readonly rxSeq: bigint;
  /** Plaintext the user-space library had decrypted before the handoff, delivered first. */
  readonly pendingPlaintextBytes: number;
}

export type TlsConnection =
  | { readonly kind: 'ktls'; readonly socket: KtlsSocket; readonly info: KtlsInfo }
  | { readonly kind: 'userspace'; readonly socket: TLSSocket; readonly code: string; readonly reason: string };

/** The connection could not be set up (closed), or kTLS was required and is not possible. */
export class KtlsHandoffError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KtlsHandoffError';
  }
}

export type KtlsServerOptions = ServerHandshakeOptions & KtlsHandoffOptions;
export type KtlsClientOptions = ClientHandshakeOptions & KtlsHandoffOptions & { readonly host?: string; readonly port: number };

/**
 * Serves TLS on an accepted socket that has read nothing (net.createServer({ pauseOnConnect: true })).
 * Rejects with KtlsHandoffError when the handshake fails or kTLS is required and not possible;
 * the connection is closed then.
 */
export async function ktlsAccept(socket: Socket, options: KtlsServerOptions): Promise<TlsConnection> {
  const taken = takeSocketFd(socket);
  return handshakeThenHandOff(taken, options, (transport) => serverHandshake(transport, options));
}

/** Connects, runs the TLS handshake (the server certificate is verified by default) and hands the connection to kTLS. */
export async function ktlsConnect(options: KtlsClientOptions): Promise<TlsConnection> {
  const { host = '127.0.0.1', port, ...rest } = options;
  const socket = connectTcp({ host, port });
  // Paused before the connection is up, so Node never reads from it.
  socket.pause();
  try {
    await once(socket, 'connect');
  } catch (error) {
    socket.destroy();
    throw new KtlsHandoffError('connect', `cannot connect to ${host}:${port}: ${(error as Error).message}`, { cause: error });
  }
  const taken = takeSocketFd(socket);
  return handshakeThenHandOff(taken, options, (transport) => clientHandshake(transport, { host, ...rest }));
}

async function handshakeThenHandOff(
  taken: TakenSocket,
  options: KtlsHandoffOptions,
  handshake: (transport: FdTransport) => Promise<HandshakeOutcome>,
): Promise<TlsConnection> {
  const support = options.support ?? ktlsSupport();
  if (options.ktls === 'require' && !support.available) {
    nativeKtls().closeFd(taken.fd);
    options.counters?.count('failed', 'ktls_unavailable');
    throw new KtlsHandoffError('ktls_unavailable', `kTLS is required but unavailable: ${support.reason}`);
  }
  let outcome: HandshakeOutcome;
  try {
    // The transport owns the fd from here: a failed handshake closes it.
    outcome = await handshake(new FdTransport(taken.fd));
  } catch (error) {
    options.counters?.count('failed', 'handshake');
    throw new KtlsHandoffError('handshake', `TLS handshake failed: ${(error as Error).message}`, { cause: error });
  }
  return handOff(outcome, taken, options);
}

/**
 * Moves a finished handshake to kTLS, or leaves it on user-space TLS ('auto') when
 * the suite or the kernel does not allow it.
 */
export function handOff(outcome: HandshakeOutcome, addresses: Partial<TakenSocket>, options: KtlsHandoffOptions): TlsConnection {
  const { counters } = options;
  const support = options.support ?? ktlsSupport();
  const keyUpdate = options.keyUpdate ?? (support.rekey ? 'rekey' : 'close');
  let plan: KtlsPlan;
  try {
    plan = planHandoff(outcome, { keepTrafficSecrets: keyUpdate === 'rekey' });
  } catch (error) {
    if (error instanceof HandoffDeclined) return decline(outcome, options, error.code, error.message);
    fail(outcome, counters, 'plan');
    throw new KtlsHandoffError('plan', `kTLS handoff failed: ${(error as Error).message}`, { cause: error });
  }
  if (!support.ciphers.has(plan.suite.cipher)) {
    plan.wipe();
    return decline(outcome, options, 'kernel_lacks_cipher', `kernel kTLS lacks ${plan.suite.cipher}: ${support.reason}`);
  }
  const { transport, socket } = outcome;
  const native = nativeKtls();
  // TLS_TX first, while user-space TLS could still go on: a socket with the ULP but
  // no keys yet is plain TCP. Once TX is set there is no way back.
  try {
    native.enableKtls(transport.fd, plan.tx);
  } catch (error) {
    plan.wipe();
    return decline(outcome, options, 'ktls_setup', `setting up kTLS failed: ${(error as Error).message}`);
  }
  const fd = transport.detach();
  abandon(socket);
  try {
    native.enableKtls(fd, plan.rx);
  } catch (error) {
    plan.wipe();
    native.closeFd(fd);
    counters?.count('failed', 'ktls_setup');
    throw new KtlsHandoffError('ktls_setup', `kTLS RX setup failed after TX: ${(error as Error).message}`, { cause: error });
  }
  const secrets = plan.trafficSecrets;
  const ktlsSocket = new KtlsSocket({
    fd,
    suite: plan.suite,
    pendingPlaintext: plan.pendingPlaintext,
    allowHalfOpen: options.allowHalfOpen,
    keyUpdater: secrets ? new KeyUpdater(fd, plan.suite, secrets.tx, secrets.rx, options.keyUpdateAfter) : null,
    remoteAddress: addresses.remoteAddress,
    remotePort: addresses.remotePort,
    localAddress: addresses.localAddress,
    localPort: addresses.localPort,
  });
  const info: KtlsInfo = {
    version: plan.suite.version,
    cipher: plan.suite.cipher,
    standardName: plan.suite.standardName,
    txSeq: plan.txSeq,
    rxSeq: plan.rxSeq,
    pendingPlaintextBytes: plan.pendingPlaintext.length,
  };
  // enableKtls zeroed key, iv and salt; this zeroes what is left (the traffic secrets now live in the KeyUpdater).
  if (!secrets) plan.wipe();
  counters?.count('handoffs', `${info.version} ${info.cipher}`);
  ktlsSocket.on('keyUpdate', (direction: string) => counters?.count('keyUpdates', direction));
  // A KeyUpdate the kernel could not follow: counted at once; the close (closed.key_update) waits for the replies.
  ktlsSocket.on('keyUpdateFailed', () => counters?.count('keyUpdates', 'refused'));
  ktlsSocket.once('close', () => counters?.count('closed', ktlsSocket.closeReason ?? 'local'));
  return { kind: 'ktls', socket: ktlsSocket, info };
}

function decline(outcome: HandshakeOutcome, options: KtlsHandoffOptions, code: string, reason: string): TlsConnection {
  const { socket, transport } = outcome;
  if (options.ktls === 'require') {
    fail(outcome, options.counters, `required:${code}`);
    throw new KtlsHandoffError(code, `kTLS is required: ${reason}`);
  }
  // User-space TLS goes on: the plaintext seen so far goes back into the stream, unread.
  // The stream is paused meanwhile, and flows again when the new owner adds a 'data'
  // listener, as a fresh socket would (an explicit pause() would otherwise stick).
  socket.pause();
  socket.removeListener('data', outcome.capture);
  const pending = Buffer.concat(outcome.plaintext);
  if (pending.length > 0) socket.unshift(pending);
  const resumeOnData = (event: string | symbol): void => {
    if (event !== 'data') return;
    socket.removeListener('newListener', resumeOnData);
    process.nextTick(() => socket.resume());
  };
  socket.on('newListener', resumeOnData);
  transport.streamMode();
  options.counters?.count('userspace', code);
  return { kind: 'userspace', socket, code, reason };
}

function fail(outcome: HandshakeOutcome, counters: KtlsCounters | undefined, code: string): void {
  counters?.count('failed', code);
  outcome.keylog.wipe();
  abandon(outcome.socket);
  outcome.transport.destroy();
}

/** Drops the user-space TLS socket without it writing anything (no close_notify: the kernel owns the stream now). */
function abandon(socket: TLSSocket): void {
  socket.removeAllListeners('data');
  socket.on('error', () => {});
  socket.destroy();
}

