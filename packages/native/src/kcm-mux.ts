import type { HangupError } from './errors.js';
import { requireNative } from './load-native.js';
import type { FrameTally } from './frame-tally.js';
import { checkInt } from './message-watcher.js';

export interface KcmMuxOptions {
  /** Largest payload (4-byte length prefix value); a larger one aborts the connection with EMSGSIZE. */
  maxFrameBytes: number;
  /** How many KCM sockets to give out (one per worker): the mux's first socket plus sockets - 1 clones. */
  sockets: number;
  /**
   * Called once when the TCP connection ends or fails: EPIPE for a peer FIN
   * (KCM's own report), ECONNRESET, EMSGSIZE when a frame's length exceeded
   * maxFrameBytes, EPROTO when the parser lost track. The KCM sockets see
   * nothing of this, so this is the only place to learn it. Call close() then.
   */
  onHangup(error: HangupError): void;
}

export interface KcmMux {
  /**
   * The KCM sockets (SOCK_SEQPACKET). Each receives whole messages (the kernel
   * spreads them over the sockets that are reading) and sends whole messages
   * on the TCP connection. Hand each to one worker: read with a MessageWatcher.
   */
  readonly fds: readonly number[];
  /**
   * The parser's count and the TCP socket's data bytes; after the peer's FIN,
   * framesInAll() of it says how many messages the KCM sockets get in all.
   */
  framed(): FrameTally;
  /**
   * Reply bytes the KCM sockets hold that the TCP socket has not taken yet: a send() only
   * queues its message on the KCM socket. Wait for 0 before close(), which drops them.
   */
  unsent(): number;
  /**
   * Gives the connection a fresh transmit once KCM stopped its own for good. After the peer's
   * FIN, KCM sets EPIPE on the TCP socket; a reply send that meets it stops the mux's transmit
   * (kcm_abort_tx_psock) and later replies stay queued (unsent() stays above 0). This
   * unattaches and re-attaches the TCP socket, which sends them. Unattaching drops a parsed
   * message that no KCM socket took yet: call it only once every request was read. Returns
   * false, doing nothing, while TCP itself still holds reply bytes (the transmit is alive) or
   * KCM still frees the psock of an earlier restart (EALREADY): ask again later. Throws when
   * the socket cannot be attached again (EOPNOTSUPP: closed meanwhile); later calls throw EBADF.
   */
  restartTransmit(): boolean;
  /**
   * 'EMSGSIZE' once the parser refused a length over maxFrameBytes, else null. The hangup report
   * may not say so: it comes once, and a reply send that fails on the aborted socket makes KCM
   * overwrite the socket's error with EPIPE, which otherwise means the peer's FIN.
   */
  parserError(): string | null;
  /**
   * Unattaches the TCP socket (SIOCKCMUNATTACH), closes the KCM sockets and the
   * mux's duplicate of the TCP fd; idempotent. Stop the watchers on fds first.
   * The caller's TCP fd stays open and works as a plain socket again. Throws a
   * SysError if the unattach failed (everything is closed regardless).
   */
  close(): void;
}

/**
 * Puts a connected TCP socket under KCM: the kernel splits its byte stream
 * into 4-byte-length-prefixed messages with kmux's BPF parser. One mux per
 * connection (KCM sends each message on any attached socket, so connections
 * cannot share one). Nothing may have been read from tcpFd yet (a Node socket:
 * `net.createServer({ pauseOnConnect: true })`, fd from `socket._handle.fd`),
 * and nothing may read it while attached. Raises the socket's SO_RCVBUF to
 * twice the largest frame when lower, since strparser refuses larger messages.
 * Throws a SysError naming the failing call (EAFNOSUPPORT: no AF_KCM; EACCES:
 * an LSM refused the attach).
 */
export function createKcmMux(tcpFd: number, options: KcmMuxOptions): KcmMux {
  const { KcmMux: Native } = requireNative();
  checkInt('tcpFd', tcpFd, 0, 0x7fff_ffff);
  checkInt('maxFrameBytes', options.maxFrameBytes, 0, 0x7fff_fff0);
  checkInt('sockets', options.sockets, 1, 1024);
  const native = new Native(tcpFd, options.maxFrameBytes, options.sockets, options.onHangup);
  const fds = Object.freeze(native.fds());
  return {
    fds,
    framed: () => native.framed(),
    unsent: () => native.unsent(),
    restartTransmit: () => native.restartTransmit(),
    parserError: () => native.parserError(),
    close: () => native.close(),
  };
}
