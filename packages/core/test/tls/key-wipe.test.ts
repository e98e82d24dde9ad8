// Key material handed to the kernel is zeroed by the native call itself, on every outcome:
// here the failing one (the host kernel has no kTLS, so TCP_ULP or TLS_TX refuses), the
// path a success cannot show. test/kernel/ktls-key-wipe.test.ts covers the handoff that works.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nativeKtls, TLS_1_3_VERSION } from '@kmux/native';
import { takeSocketFd } from '../../src/tls/socket-fd.js';
import { pausedConnect, pausedListener } from './fixtures.js';

const zero = (b: Uint8Array): boolean => b.every((x) => x === 0);

describe('enableKtls key wiping', () => {
  it('zeroes key, iv and salt even when the kernel refuses them', async () => {
    const { server, port } = await pausedListener((socket) => socket.destroy());
    const { fd } = takeSocketFd(await pausedConnect(port));
    const key = randomBytes(16);
    const iv = randomBytes(8);
    const salt = randomBytes(4);
    const recSeq = Buffer.alloc(8, 1);
    let refused: unknown = null;
    try {
      nativeKtls().enableKtls(fd, { direction: 'tx', version: TLS_1_3_VERSION, cipher: 'aes-gcm-128', key, iv, salt, recSeq });
    } catch (error) {
      refused = error;
    } finally {
      nativeKtls().closeFd(fd);
      server.close();
    }
    // Whatever this kernel said (the host has no kTLS: ENOENT), nothing secret is left behind.
    if (refused) expect(refused).toMatchObject({ syscall: expect.stringMatching(/setsockopt/) });
    expect([zero(key), zero(iv), zero(salt)]).toEqual([true, true, true]);
    // The sequence number is not secret and stays as given.
    expect(recSeq).toEqual(Buffer.alloc(8, 1));
  });
});
