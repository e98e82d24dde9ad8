import type { Socket } from 'node:net';
import { nativeKtls } from '@kmux/native';

export interface TakenSocket {
  /** A close-on-exec duplicate of the socket's fd; the caller owns it. */
  readonly fd: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
}

/**
 * Takes the TCP connection away from a net.Socket that has not read anything
 * (accepted with `net.createServer({ pauseOnConnect: true })`, or connected while
 * paused): duplicates its fd, then destroys the Node socket. Closing Node's fd
 * does not end the connection, which lives on in the duplicate; libuv removes its
 * epoll registration before it closes its fd, so nothing stale is left behind.
 *
 * Refuses a socket that has read bytes: they are gone from the kernel's queue and
 * a TLS handshake (or kTLS) on the duplicate would miss them.
 */
export function takeSocketFd(socket: Socket): TakenSocket {
  const handle = (socket as unknown as { _handle?: { fd?: number; reading?: boolean } | null })._handle;
  if (socket.bytesRead > 0 || socket.readableLength > 0 || handle?.reading === true) {
    throw new Error(
      'takeSocketFd: the socket is reading or has read data already; accept with net.createServer({ pauseOnConnect: true }) or pause() before connecting',
    );
  }
  const nodeFd = handle?.fd;
  if (typeof nodeFd !== 'number' || nodeFd < 0) throw new Error('takeSocketFd: the socket has no file descriptor (closed, or not a TCP socket)');
  const taken: TakenSocket = {
    fd: nativeKtls().dupFd(nodeFd),
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
  };
  socket.destroy();
  return taken;
}
