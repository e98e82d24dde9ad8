// Every transport serves its connections with TCP_NODELAY. With Nagle on, a reply waits
// while an earlier one is unacknowledged; once two replies overlap, every later reply waits
// for the ACK the client's next request carries, and at a steady low rate the median reply
// lags one request behind (measured: ~2 ms at 1,000 req/s over 2 connections, against
// 0.36 ms in user space). The option is read from the server's own accepted socket: every
// fd of this process that refers to it (the kernel transports keep duplicates). The host
// runs user space, native and sockmap; the VM suite runs it on KCM (KMUX_TRANSPORTS=kcm).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { TransportName } from '@kmux/core';
import { nativeKtls } from '@kmux/native';
import { RawConnection, cleanup, startServer } from '../helpers.js';

afterEach(cleanup);

/** The inode of the TCP socket bound to 127.0.0.1:localPort and connected to 127.0.0.1:remotePort. */
function socketInode(localPort: number, remotePort: number): string {
  const hex = (port: number): string => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === hex(localPort) && fields[2] === hex(remotePort)) return fields[9]!;
  }
  throw new Error(`no TCP socket 127.0.0.1:${localPort} -> ${remotePort} in /proc/net/tcp`);
}

/** This process's fds that refer to socket `inode`. */
function fdsOf(inode: string): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`;
      } catch {
        return false; // closed since the listing
      }
    });
}

const TRANSPORTS = (process.env.KMUX_TRANSPORTS ?? 'userspace,native,sockmap').split(',') as TransportName[];

describe('TCP_NODELAY on accepted connections', () => {
  for (const transport of TRANSPORTS) {
    it(`${transport}: the server's socket has TCP_NODELAY set`, async () => {
      const s = await startServer({ transport });
      expect(s.server.transport?.name).toBe(transport);
      const conn = await RawConnection.open(s.port);
      // Answered: the connection is accepted and set up on its transport.
      conn.request(1, 'echo', 'x');
      await conn.waitReplies(1);
      const fds = fdsOf(socketInode(s.port, conn.socket.localPort!));
      expect(fds.length).toBeGreaterThan(0);
      for (const fd of fds) expect(nativeKtls().noDelay(fd), `fd ${fd}`).toBe(true);
    });
  }
});
