// Keylog capture, /proc/net/tls_stat parsing and the KeyUpdate message: small pieces of
// the handoff with no network involved.
import { EventEmitter } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { KeylogCapture, parseKeylogLine } from '../../src/tls/keylog.js';
import { keyUpdateMessage } from '../../src/tls/key-update.js';
import { parseTlsStat } from '../../src/tls/tls-stat.js';

const random = 'ab'.repeat(32);

describe('keylog lines', () => {
  it('parses an NSS key log line without its newline', () => {
    const entry = parseKeylogLine(Buffer.from(`SERVER_TRAFFIC_SECRET_0 ${random} ${'0F'.repeat(48)}\n`));
    expect(entry).toEqual({ label: 'SERVER_TRAFFIC_SECRET_0', clientRandom: Buffer.alloc(32, 0xab), secret: Buffer.alloc(48, 0x0f) });
  });

  it('refuses lines that are not label, 32-byte random, hex secret', () => {
    for (const line of ['', 'CLIENT_RANDOM', `CLIENT_RANDOM ${random}`, `CLIENT_RANDOM ${random} 0g`, `CLIENT_RANDOM abcd 0011`, `CLIENT_RANDOM ${random} 001`]) {
      expect(parseKeylogLine(Buffer.from(line)), line).toBeNull();
    }
  });

  it('keeps the traffic secrets, zeroes the lines and every secret it does not keep, and hands each out once', () => {
    const socket = new EventEmitter() as unknown as TLSSocket;
    const capture = new KeylogCapture(socket);
    const lines = ['SERVER_HANDSHAKE_TRAFFIC_SECRET', 'EXPORTER_SECRET', 'CLIENT_TRAFFIC_SECRET_0', 'SERVER_TRAFFIC_SECRET_0'].map((label, i) =>
      Buffer.from(`${label} ${random} ${String(i + 1).repeat(64)}\n`),
    );
    lines.push(Buffer.from('garbage\n'));
    for (const line of lines) socket.emit('keylog', line);
    for (const line of lines) expect(line.every((b) => b === 0)).toBe(true);
    expect(capture.malformedLines).toBe(1);
    expect(capture.clientRandom).toEqual(Buffer.alloc(32, 0xab));
    const client = capture.take('CLIENT_TRAFFIC_SECRET_0');
    expect(client).toEqual(Buffer.alloc(32, 0x33));
    expect(capture.take('CLIENT_TRAFFIC_SECRET_0')).toBeUndefined();
    expect(capture.take('CLIENT_RANDOM')).toBeUndefined();
    const held = capture.take('SERVER_TRAFFIC_SECRET_0')!;
    socket.emit('keylog', Buffer.from(`SERVER_TRAFFIC_SECRET_0 ${random} ${'55'.repeat(32)}\n`));
    capture.wipe();
    expect(held).toEqual(Buffer.alloc(32, 0x44)); // handed out: the caller's to zero
    expect(capture.take('SERVER_TRAFFIC_SECRET_0')).toBeUndefined();
  });
});

describe('/proc/net/tls_stat', () => {
  it('parses the counters as the kernel prints them', () => {
    const text = 'TlsCurrTxSw                     \t1\nTlsCurrRxSw                     \t1\nTlsTxSw                         \t12\nTlsDecryptError                 \t0\n';
    expect(parseTlsStat(text)).toEqual({ TlsCurrTxSw: 1, TlsCurrRxSw: 1, TlsTxSw: 12, TlsDecryptError: 0 });
  });
});

describe('KeyUpdate', () => {
  it('builds the KeyUpdate message', () => {
    expect(keyUpdateMessage(true)).toEqual(Buffer.from([24, 0, 0, 1, 1]));
    expect(keyUpdateMessage(false)).toEqual(Buffer.from([24, 0, 0, 1, 0]));
  });
});
