import { TLS_1_2_VERSION, TLS_1_3_VERSION, type KtlsCryptoParams } from '@kmux/native';
import { cipherSuite, type CipherSuite } from './cipher-suites.js';
import { countProtectedRecords, KeyMismatchError, type DirectionState } from './handoff-sequence.js';
import type { HandshakeOutcome, TlsSide } from './handshake.js';
import type { RecordKeys } from './record-crypto.js';
import { ContentType, RECORD_HEADER_BYTES, serverRandomOf, type WireRecord } from './record.js';
import { tls12KeyBlock } from './tls12-keys.js';
import { tls13TrafficKeys } from './tls13-keys.js';

/**
 * What the kernel needs to take over the record layer of a finished handshake:
 * TLS_TX and TLS_RX crypto info with the exact sequence numbers, and the
 * plaintext the user-space library already delivered. Pure computation (no
 * kernel involved), so the host tests can check every byte of it.
 */

export type DeclineCode = 'cipher_not_supported' | 'missing_secret' | 'key_mismatch' | 'plaintext_mismatch';

/** Why a connection cannot move to kTLS; the connection itself is still fine (user-space TLS). */
export class HandoffDeclined extends Error {
  constructor(
    readonly code: DeclineCode,
    message: string,
  ) {
    super(message);
    this.name = 'HandoffDeclined';
  }
}

export interface KtlsPlan {
  readonly suite: CipherSuite;
  readonly side: TlsSide;
  readonly tx: KtlsCryptoParams;
  readonly rx: KtlsCryptoParams;
  /** Sequence number of the next record each way. */
  readonly txSeq: bigint;
  readonly rxSeq: bigint;
  /** Application data the user-space library decrypted before the handoff: delivered first. */
  readonly pendingPlaintext: Buffer;
  /** TLS 1.3 application traffic secrets, kept only on request (to answer a KeyUpdate). */
  readonly trafficSecrets: { readonly tx: Buffer; readonly rx: Buffer } | null;
  /** Zeroes every key byte the plan still holds (enableKtls zeroes key, iv and salt itself). */
  wipe(): void;
}

export interface PlanOptions {
  /** Keep the TLS 1.3 traffic secrets for a later KeyUpdate instead of zeroing them now. */
  readonly keepTrafficSecrets?: boolean;
}

interface DirectionKeys {
  client: RecordKeys;
  server: RecordKeys;
  secrets: { client: Buffer; server: Buffer } | null;
}

export function planHandoff(outcome: HandshakeOutcome, { keepTrafficSecrets = false }: PlanOptions = {}): KtlsPlan {
  const { socket, transport, keylog, side } = outcome;
  const version = socket.getProtocol() ?? 'unknown';
  const standardName = socket.getCipher()?.standardName ?? 'unknown';
  const suite = cipherSuite(version, standardName);
  if (!suite) {
    throw new HandoffDeclined('cipher_not_supported', `kTLS does not take ${version} ${standardName}`);
  }
  const keys = suite.version === 'TLSv1.3' ? tls13Keys(outcome, suite) : tls12Keys(outcome, suite);
  const ours = side === 'server' ? keys.server : keys.client;
  const theirs = side === 'server' ? keys.client : keys.server;
  const wipeKeys = (): void => {
    for (const k of [ours, theirs]) {
      k.key.fill(0);
      k.iv.fill(0);
    }
    keys.secrets?.client.fill(0);
    keys.secrets?.server.fill(0);
  };
  try {
    const sent = countProtectedRecords(ours, transport.sent);
    const received = countProtectedRecords(theirs, transport.received);
    const pendingPlaintext = Buffer.concat(outcome.plaintext);
    if (pendingPlaintext.length !== received.applicationBytes) {
      throw new HandoffDeclined(
        'plaintext_mismatch',
        `the TLS library decrypted ${received.applicationBytes} bytes of application data but delivered ${pendingPlaintext.length}`,
      );
    }
    const secrets = keys.secrets;
    const trafficSecrets =
      secrets && keepTrafficSecrets
        ? { tx: side === 'server' ? secrets.server : secrets.client, rx: side === 'server' ? secrets.client : secrets.server }
        : null;
    if (!trafficSecrets) {
      secrets?.client.fill(0);
      secrets?.server.fill(0);
    }
    const tx = cryptoParams('tx', suite, ours, sent, true);
    const rx = cryptoParams('rx', suite, theirs, received, false);
    return {
      suite,
      side,
      tx,
      rx,
      txSeq: sent.records,
      rxSeq: received.records,
      pendingPlaintext,
      trafficSecrets,
      wipe: () => {
        for (const p of [tx, rx]) {
          p.key.fill(0);
          p.iv.fill(0);
          p.salt.fill(0);
        }
        trafficSecrets?.tx.fill(0);
        trafficSecrets?.rx.fill(0);
      },
    };
  } catch (error) {
    wipeKeys();
    if (error instanceof KeyMismatchError) throw new HandoffDeclined('key_mismatch', error.message);
    throw error;
  } finally {
    keylog.wipe();
  }
}

function takeSecret(outcome: HandshakeOutcome, label: 'CLIENT_TRAFFIC_SECRET_0' | 'SERVER_TRAFFIC_SECRET_0' | 'CLIENT_RANDOM'): Buffer {
  const secret = outcome.keylog.take(label);
  if (!secret) {
    const malformed = outcome.keylog.malformedLines;
    throw new HandoffDeclined(
      'missing_secret',
      `the keylog gave no ${label}${malformed ? ` (${malformed} lines could not be parsed)` : ''}`,
    );
  }
  return secret;
}

function tls13Keys(outcome: HandshakeOutcome, suite: CipherSuite): DirectionKeys {
  const client = takeSecret(outcome, 'CLIENT_TRAFFIC_SECRET_0');
  let server: Buffer;
  try {
    server = takeSecret(outcome, 'SERVER_TRAFFIC_SECRET_0');
  } catch (error) {
    client.fill(0);
    throw error;
  }
  return {
    client: { suite, ...tls13TrafficKeys(suite.hash, client, suite.keyLength) },
    server: { suite, ...tls13TrafficKeys(suite.hash, server, suite.keyLength) },
    secrets: { client, server },
  };
}

function tls12Keys(outcome: HandshakeOutcome, suite: CipherSuite): DirectionKeys {
  const master = takeSecret(outcome, 'CLIENT_RANDOM');
  try {
    const clientRandom = outcome.keylog.clientRandom;
    // The server random is not in the keylog: it is read from the ServerHello on the wire.
    const serverRecords = outcome.side === 'server' ? outcome.transport.sent : outcome.transport.received;
    const serverRandom = serverRandomFrom(serverRecords);
    if (!clientRandom || !serverRandom) {
      throw new HandoffDeclined('missing_secret', 'the client or server random of the handshake was not seen');
    }
    const block = tls12KeyBlock(suite, master, clientRandom, serverRandom);
    return {
      client: { suite, key: block.clientKey, iv: block.clientIv },
      server: { suite, key: block.serverKey, iv: block.serverIv },
      secrets: null,
    };
  } finally {
    master.fill(0);
  }
}

/** The random from the server's first handshake bytes (plaintext records before its ChangeCipherSpec). */
function serverRandomFrom(serverRecords: readonly WireRecord[]): Buffer | null {
  const handshake: Buffer[] = [];
  for (const record of serverRecords) {
    if (record.type === ContentType.changeCipherSpec) break;
    if (record.type === ContentType.handshake) handshake.push(record.bytes.subarray(RECORD_HEADER_BYTES));
  }
  return serverRandomOf(Buffer.concat(handshake));
}

function seqBytes(seq: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(seq);
  return out;
}

/**
 * The kernel's crypto_info fields (linux/tls.h): AES-GCM splits the 12-byte nonce
 * base into salt (4) and iv (8); ChaCha20-Poly1305 takes all 12 as iv. The returned
 * Buffers alias the derived keys, so enableKtls's wipe reaches them.
 */
function cryptoParams(
  direction: 'tx' | 'rx',
  suite: CipherSuite,
  keys: RecordKeys,
  state: DirectionState,
  sending: boolean,
): KtlsCryptoParams {
  const version = suite.version === 'TLSv1.3' ? TLS_1_3_VERSION : TLS_1_2_VERSION;
  const recSeq = seqBytes(state.records);
  let iv: Buffer;
  let salt: Buffer;
  if (suite.cipher === 'chacha20-poly1305') {
    iv = keys.iv;
    salt = Buffer.alloc(0);
  } else if (suite.version === 'TLSv1.3') {
    salt = keys.iv.subarray(0, 4);
    iv = keys.iv.subarray(4);
  } else {
    // TLS 1.2 AES-GCM: `iv` is the first explicit nonce the kernel sends, then counts up
    // from it. Continuing from the library's last one (OpenSSL starts at a random value)
    // keeps nonces unique under this key. On RX the nonce comes in each record.
    salt = keys.iv;
    iv = sending && state.lastExplicitNonce ? increment(state.lastExplicitNonce) : seqBytes(state.records);
  }
  return { direction, version, cipher: suite.cipher, key: keys.key, iv, salt, recSeq };
}

function increment(counter: Buffer): Buffer {
  const out = Buffer.from(counter);
  out.writeBigUInt64BE((out.readBigUInt64BE() + 1n) & 0xffff_ffff_ffff_ffffn);
  return out;
}

/** The user-space view of one direction's crypto info (for checking the kernel's records against). */
export function recordKeysOf(suite: CipherSuite, params: KtlsCryptoParams): RecordKeys {
  const iv = suite.cipher === 'chacha20-poly1305' ? params.iv : suite.version === 'TLSv1.3' ? Buffer.concat([params.salt, params.iv]) : params.salt;
  return { suite, key: Buffer.from(params.key), iv: Buffer.from(iv) };
}
