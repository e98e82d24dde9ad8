// When kmux starts a KeyUpdate of its own (limits per cipher, RFC 8446 §5.5), what it asks of
// the peer (§4.6.3), and that a key the kernel refuses leaves no secret behind. The host has
// no kTLS, so every install here is refused; test/kernel/ktls-rekey.test.ts installs for real.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nativeKtls } from '@kmux/native';
import { cipherSuite } from '../../src/tls/cipher-suites.js';
import { checkKeyUpdateLimits, DEFAULT_KEY_UPDATE_RECORDS, KeyUpdater } from '../../src/tls/key-update.js';
import { takeSocketFd } from '../../src/tls/socket-fd.js';
import { pausedConnect, pausedListener } from './fixtures.js';

const aes = cipherSuite('TLSv1.3', 'TLS_AES_128_GCM_SHA256')!;
const chacha = cipherSuite('TLSv1.3', 'TLS_CHACHA20_POLY1305_SHA256')!;

describe('KeyUpdater', () => {
  it('defaults to 2^24 records for AES-GCM and no record limit for ChaCha20-Poly1305', () => {
    expect(new KeyUpdater(-1, aes, randomBytes(32), randomBytes(32)).limits).toEqual({ records: 2 ** 24, bytes: Infinity });
    expect(new KeyUpdater(-1, chacha, randomBytes(32), randomBytes(32)).limits).toEqual({ records: Infinity, bytes: Infinity });
    expect(DEFAULT_KEY_UPDATE_RECORDS['aes-gcm-256']).toBe(2 ** 24);
  });

  it('is due once the records (one per 16 KiB started, per send) or bytes reach a limit, and then asks the peer too', () => {
    const byRecords = new KeyUpdater(-1, aes, randomBytes(32), randomBytes(32), { records: 3 });
    byRecords.sent(100);
    byRecords.sent(16 * 1024);
    expect(byRecords.due).toBe(false);
    byRecords.sent(16 * 1024 + 1); // two records
    expect(byRecords.due).toBe(true);
    expect(byRecords.message()).toEqual(Buffer.from([24, 0, 0, 1, 1]));

    const byBytes = new KeyUpdater(-1, chacha, randomBytes(32), randomBytes(32), { bytes: 1000 });
    byBytes.sent(999);
    expect(byBytes.due).toBe(false);
    byBytes.sent(1);
    expect(byBytes.due).toBe(true);
  });

  it('answers a requested update with update_not_requested unless it asks anyway', () => {
    const updater = new KeyUpdater(-1, aes, randomBytes(32), randomBytes(32));
    updater.schedule(false);
    expect(updater.due).toBe(true);
    expect(updater.message()).toEqual(Buffer.from([24, 0, 0, 1, 0]));
    updater.schedule(true);
    expect(updater.message()).toEqual(Buffer.from([24, 0, 0, 1, 1]));
  });

  it('rejects limits that are not positive numbers', () => {
    expect(() => checkKeyUpdateLimits({ records: 0 })).toThrow(/ktlsKeyUpdateAfter.records must be a positive number, got 0/);
    expect(() => checkKeyUpdateLimits({ bytes: -1 })).toThrow(RangeError);
    expect(() => checkKeyUpdateLimits({ bytes: 'x' as never })).toThrow(RangeError);
    expect(checkKeyUpdateLimits({ records: 10 })).toEqual({ records: 10 });
  });

  it('wipes the old and the next secret when the kernel refuses the next key', async () => {
    const { server, port } = await pausedListener((socket) => socket.destroy());
    const { fd } = takeSocketFd(await pausedConnect(port));
    const tx = randomBytes(32);
    const rx = randomBytes(32);
    const updater = new KeyUpdater(fd, aes, tx, rx);
    try {
      expect(() => updater.nextRx(false)).toThrow(expect.objectContaining({ reason: 'key_update', code: 'ERR_KTLS_KEY_UPDATE' }));
      expect(() => updater.nextTx()).toThrow(expect.objectContaining({ reason: 'key_update' }));
    } finally {
      nativeKtls().closeFd(fd);
      server.close();
    }
    expect(rx.every((b) => b === 0)).toBe(true);
    expect(tx.every((b) => b === 0)).toBe(true);
  });
});
