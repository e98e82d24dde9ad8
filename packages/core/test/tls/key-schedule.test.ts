// The kTLS key schedule against published vectors: RFC 8448 §3 (a complete TLS 1.3
// handshake trace) and the TLS 1.2 PRF vectors from the IETF TLS working group (the
// SHA-384 one also checked against `openssl kdf TLS1-PRF`).
import { describe, expect, it } from 'vitest';
import { createSecureContext } from 'node:tls';
import { cipherSuite, ktlsCipherList } from '../../src/tls/cipher-suites.js';
import { openRecord, sealRecord } from '../../src/tls/record-crypto.js';
import { tls12KeyBlock, tls12Prf } from '../../src/tls/tls12-keys.js';
import { hkdfExpandLabel, tls13NextTrafficSecret, tls13TrafficKeys } from '../../src/tls/tls13-keys.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const suite128 = cipherSuite('TLSv1.3', 'TLS_AES_128_GCM_SHA256')!;

// RFC 8448 §3, Simple 1-RTT Handshake
const rfc8448 = {
  serverHandshake: hex('b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38'),
  clientHandshake: hex('b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21'),
  clientApplication: hex('9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5'),
  serverApplication: hex('a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43'),
  // {client} send application_data record, 50 bytes 00 01 .. 31, the client's first record under its application keys
  clientAppRecord: hex(`17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b 98 19
    a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4`),
  // {server} send application_data record, the same 50 bytes, after the server's NewSessionTicket (its record 0)
  serverAppRecord: hex(`17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 e3 0e fa
    f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d`),
};
const payload = Buffer.from(Array.from({ length: 50 }, (_, i) => i));

describe('TLS 1.3 key schedule (RFC 8448 §3)', () => {
  it('derives the handshake traffic keys', () => {
    expect(tls13TrafficKeys('sha256', rfc8448.serverHandshake, 16)).toEqual({
      key: hex('3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc'),
      iv: hex('5d 31 3e b2 67 12 76 ee 13 00 0b 30'),
    });
    expect(tls13TrafficKeys('sha256', rfc8448.clientHandshake, 16)).toEqual({
      key: hex('db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01'),
      iv: hex('5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f'),
    });
  });

  it('derives the application traffic keys', () => {
    expect(tls13TrafficKeys('sha256', rfc8448.clientApplication, 16)).toEqual({
      key: hex('17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51'),
      iv: hex('5b 78 92 3d ee 08 57 90 33 e5 23 d9'),
    });
    expect(tls13TrafficKeys('sha256', rfc8448.serverApplication, 16)).toEqual({
      key: hex('9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56'),
      iv: hex('cf 78 2b 88 dd 83 54 9a ad f1 e9 84'),
    });
  });

  it('opens the trace records with those keys at their sequence numbers, and nowhere else', () => {
    const client = { suite: suite128, ...tls13TrafficKeys('sha256', rfc8448.clientApplication, 16) };
    const server = { suite: suite128, ...tls13TrafficKeys('sha256', rfc8448.serverApplication, 16) };
    expect(openRecord(client, 0n, rfc8448.clientAppRecord)).toEqual({ type: 23, plaintext: payload });
    expect(openRecord(server, 1n, rfc8448.serverAppRecord)).toEqual({ type: 23, plaintext: payload });
    expect(openRecord(server, 0n, rfc8448.serverAppRecord)).toBeNull();
    expect(openRecord(client, 0n, rfc8448.serverAppRecord)).toBeNull();
  });

  it('seals the same bytes the trace shows', () => {
    const client = { suite: suite128, ...tls13TrafficKeys('sha256', rfc8448.clientApplication, 16) };
    expect(sealRecord(client, 0n, 23, payload)).toEqual(rfc8448.clientAppRecord);
  });

  it('builds HkdfLabel with the "tls13 " prefix and the length first (RFC 8446 §7.1)', () => {
    // "derived" secret from the trace: Derive-Secret(early_secret, "derived", "") uses the empty-string hash
    const earlySecret = hex('33 ad 0a 1c 60 7e c0 3b 09 e6 cd 98 93 68 0c e2 10 ad f3 00 aa 1f 26 60 e1 b2 2e 10 f1 70 f9 2a');
    const emptyHash = hex('e3 b0 c4 42 98 fc 1c 14 9a fb f4 c8 99 6f b9 24 27 ae 41 e4 64 9b 93 4c a4 95 99 1b 78 52 b8 55');
    expect(hkdfExpandLabel('sha256', earlySecret, 'derived', emptyHash, 32)).toEqual(
      hex('6f 26 15 a1 08 c7 02 c5 67 8f 54 fc 9d ba b6 97 16 c0 76 18 9c 48 25 0c eb ea c3 57 6c 36 11 ba'),
    );
  });

  it('rolls a traffic secret forward for KeyUpdate with "traffic upd", 32 or 48 bytes', () => {
    const next = tls13NextTrafficSecret('sha256', rfc8448.clientApplication);
    expect(next).toEqual(hkdfExpandLabel('sha256', rfc8448.clientApplication, 'traffic upd', Buffer.alloc(0), 32));
    expect(next.equals(rfc8448.clientApplication)).toBe(false);
    expect(tls13NextTrafficSecret('sha384', Buffer.alloc(48, 1))).toHaveLength(48);
  });
});

describe('TLS 1.2 PRF and key block', () => {
  it('matches the P_SHA256 vector', () => {
    const out = tls12Prf('sha256', hex('9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35'), 'test label',
      hex('a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c'), 100);
    expect(out).toEqual(hex(`e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a
      6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab 4f bc 91 66 6e 9d ef 9b
      97 fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01 87 34 7b 66`));
  });

  it('matches the P_SHA384 vector', () => {
    const out = tls12Prf('sha384', hex('b8 0b 73 3d 6c ee fc dc 71 56 6e a4 8e 55 67 df'), 'test label',
      hex('cd 66 5c f6 a8 44 7d d6 ff 8b 27 55 5e db 74 65'), 148);
    expect(out).toEqual(hex(`7b 0c 18 e9 ce d4 10 ed 18 04 f2 cf a3 4a 33 6a 1c 14 df fb 49 00 bb 5f d7 94 21 07 e8 1c 83 cd
      e9 ca 0f aa 60 be 9f e3 4f 82 b1 23 3c 91 46 a0 e5 34 cb 40 0f ed 27 00 88 4f 9d c2 36 f8 0e dd 8b fa 96 11 44 c9 e8 d7
      92 ec a7 22 a7 b3 2f c3 d4 16 d4 73 eb c2 c5 fd 4a bf da d0 5d 91 84 25 9b 5b f8 cd 4d 90 fa 0d 31 e2 de c4 79 e4 f1 a2
      60 66 f2 ee a9 a6 92 36 a3 e5 26 55 c9 e9 ae e6 91 c8 f3 a2 68 54 30 8d 5e aa 3b e8 5e 09 90 70 3d 73 e5 6f`));
  });

  it('cuts the key block per suite: keys, then 4-byte (AES-GCM) or 12-byte (ChaCha20) IVs, server random first', () => {
    const master = Buffer.alloc(48, 7);
    const clientRandom = Buffer.alloc(32, 1);
    const serverRandom = Buffer.alloc(32, 2);
    for (const [name, k, iv] of [
      ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 16, 4],
      ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 32, 4],
      ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 32, 12],
    ] as const) {
      const suite = cipherSuite('TLSv1.2', name)!;
      const block = tls12Prf(suite.hash, master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), 2 * k + 2 * iv);
      expect(tls12KeyBlock(suite, master, clientRandom, serverRandom)).toEqual({
        clientKey: block.subarray(0, k),
        serverKey: block.subarray(k, 2 * k),
        clientIv: block.subarray(2 * k, 2 * k + iv),
        serverIv: block.subarray(2 * k + iv),
      });
    }
  });
});

describe('cipher suites', () => {
  it('maps the AEAD suites kTLS takes and refuses the rest', () => {
    expect(cipherSuite('TLSv1.3', 'TLS_AES_256_GCM_SHA384')).toMatchObject({ cipher: 'aes-gcm-256', hash: 'sha384', ivLength: 12 });
    expect(cipherSuite('TLSv1.3', 'TLS_CHACHA20_POLY1305_SHA256')).toMatchObject({ cipher: 'chacha20-poly1305', explicitNonceLength: 0 });
    expect(cipherSuite('TLSv1.2', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256')).toMatchObject({ ivLength: 4, explicitNonceLength: 8 });
    expect(cipherSuite('TLSv1.2', 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256')).toMatchObject({ ivLength: 12, explicitNonceLength: 0 });
    expect(cipherSuite('TLSv1.3', 'TLS_AES_128_CCM_SHA256')).toBeNull();
    expect(cipherSuite('TLSv1.2', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256')).toBeNull();
    expect(cipherSuite('TLSv1.1', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256')).toBeNull();
  });
});

describe('ktlsCipherList', () => {
  it('offers only the suites of the given kernel ciphers, each of which kmux hands over, and OpenSSL takes the list', () => {
    const list = ktlsCipherList(['chacha20-poly1305', 'aes-gcm-128']);
    expect(list).toBe(
      'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:' +
        'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305',
    );
    expect(() => createSecureContext({ ciphers: ktlsCipherList(['aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305']) })).not.toThrow();
    for (const name of list.split(':').filter((n) => n.startsWith('TLS_'))) expect(cipherSuite('TLSv1.3', name), name).not.toBeNull();
  });
});
