import type { HangupError } from './errors.js';
import type { SockmapEntries } from './binding.js';
import { requireNative } from './load-native.js';
import type { FrameTally } from './frame-tally.js';
import { checkInt } from './message-watcher.js';

export interface SockmapOptions {
  /** Largest payload (4-byte length prefix value); a larger one aborts the connection with EMSGSIZE. */
  maxFrameBytes: number;
  /** Targets per connection: one per worker. */
  workers: number;
  /** Most connections at once (map sizes). Default 1024. */
  capacity?: number;
  /**
   * SO_RCVBUF of each target. The kernel charges every redirected frame the
   * truesize of its whole original skb, so the default rcvbuf throttles to
   * ~30k frames/s. Default max(16 MiB, 4 × (maxFrameBytes + 4)).
   */
  targetRcvbufBytes?: number;
}

export interface SockmapConnection {
  readonly slot: number;
  /**
   * One unix stream socket per worker: frames of this connection only, whole and
   * in order per socket but without boundaries (re-split: MessageWatcher does).
   */
  readonly fds: readonly number[];
  /**
   * The parser's count and the TCP socket's data bytes. After the peer's FIN,
   * framesInAll() of it is the total; frame i went to fds[i % fds.length].
   */
  framed(): FrameTally;
  /** Takes the connection out of the maps and closes its target sockets; stop their watchers first. */
  remove(): void;
}

export interface Sockmap {
  /**
   * Puts a connected TCP socket into the map (nothing may read it from now on;
   * bytes already queued are parsed too). Raises its SO_RCVBUF to twice the
   * largest frame when lower. onHangup reports the end of the connection once:
   * "EOF" for a peer FIN, ECONNRESET, EMSGSIZE (a length above maxFrameBytes),
   * EPROTO (the parser lost track). Frames already parsed may still be on their
   * way to the targets then; remove() drops what has not arrived.
   */
  add(tcpFd: number, onHangup: (error: HangupError) => void): SockmapConnection;
  /** Counts the entries of the kernel maps: all zero once every connection is removed. */
  entries(): SockmapEntries;
  /** Removes every connection and closes the maps (idempotent). */
  close(): void;
}

/**
 * The sockmap data path: a stream parser and a verdict (BPF) split each TCP
 * connection's frames and spread them round-robin, frame by frame, over that
 * connection's own targets, one unix socketpair per worker. Needs CAP_BPF and
 * CAP_NET_ADMIN. Throws a SysError naming the failing call.
 */
export function createSockmap(options: SockmapOptions): Sockmap {
  const { Sockmap: Native } = requireNative();
  const { maxFrameBytes, workers, capacity = 1024 } = options;
  checkInt('maxFrameBytes', maxFrameBytes, 0, 0x7fff_fff0);
  checkInt('workers', workers, 1, 1024);
  checkInt('capacity', capacity, 1, Math.floor(0xffff_ffff / workers));
  const targetRcvbufBytes = options.targetRcvbufBytes ?? Math.min(0x7fff_ffff, Math.max(16 << 20, 4 * (maxFrameBytes + 4)));
  checkInt('targetRcvbufBytes', targetRcvbufBytes, 1, 0x7fff_ffff);
  const native = new Native(maxFrameBytes, workers, capacity, targetRcvbufBytes);
  return {
    add(tcpFd, onHangup) {
      checkInt('tcpFd', tcpFd, 0, 0x7fff_ffff);
      const { slot, fds } = native.add(tcpFd, onHangup);
      let removed = false;
      return {
        slot,
        fds: Object.freeze(fds),
        framed: () => native.framed(slot),
        remove() {
          if (removed) return;
          removed = true;
          native.remove(slot);
        },
      };
    },
    entries: () => native.entries(),
    close: () => native.close(),
  };
}
