import type { TLSSocket } from 'node:tls';

/**
 * Captures the secrets of one connection from Node's 'keylog' event, which gives
 * NSS key log lines as Buffers: "<LABEL> <client_random hex> <secret hex>\n".
 * The hex is decoded straight from the Buffer, never through a JS string (a
 * string cannot be wiped), and the line itself is zeroed once parsed.
 *
 * Only what the record layer needs is kept: the TLS 1.3 application traffic
 * secrets and the TLS 1.2 master secret. Handshake and exporter secrets are
 * zeroed as they arrive.
 */

export type KeylogLabel = 'CLIENT_TRAFFIC_SECRET_0' | 'SERVER_TRAFFIC_SECRET_0' | 'CLIENT_RANDOM';
const KEPT = new Set<string>(['CLIENT_TRAFFIC_SECRET_0', 'SERVER_TRAFFIC_SECRET_0', 'CLIENT_RANDOM']);

export interface KeylogEntry {
  label: string;
  clientRandom: Buffer;
  secret: Buffer;
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Decodes line[start, end) as hex into a new Buffer; null if it is not hex. */
function decodeHex(line: Uint8Array, start: number, end: number): Buffer | null {
  if (end < start || (end - start) % 2 !== 0) return null;
  const out = Buffer.alloc((end - start) / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(line[start + 2 * i]!);
    const lo = hexValue(line[start + 2 * i + 1]!);
    if (hi < 0 || lo < 0) {
      out.fill(0);
      return null;
    }
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Parses one key log line; null when it is not "<LABEL> <hex> <hex>". Does not modify `line`. */
export function parseKeylogLine(line: Uint8Array): KeylogEntry | null {
  let end = line.length;
  while (end > 0 && (line[end - 1] === 0x0a || line[end - 1] === 0x0d)) end--;
  const first = line.indexOf(0x20);
  const second = first < 0 ? -1 : line.indexOf(0x20, first + 1);
  if (first <= 0 || second < 0 || second >= end) return null;
  const clientRandom = decodeHex(line, first + 1, second);
  const secret = decodeHex(line, second + 1, end);
  if (!clientRandom || !secret || clientRandom.length !== 32 || secret.length === 0) {
    secret?.fill(0);
    return null;
  }
  return { label: Buffer.from(line.subarray(0, first)).toString('latin1'), clientRandom, secret };
}

export class KeylogCapture {
  private readonly secrets = new Map<string, Buffer>();
  private random: Buffer | null = null;
  private malformed = 0;

  /** Listens on `socket` from now on; attach before the handshake derives its secrets. */
  constructor(socket: TLSSocket) {
    socket.on('keylog', (line: Buffer) => this.add(line));
  }

  /** The client random of the connection (public: it is sent in the clear in the ClientHello). */
  get clientRandom(): Buffer | null {
    return this.random;
  }

  /** Lines that could not be parsed; a handoff needs all its secrets, so it reports these. */
  get malformedLines(): number {
    return this.malformed;
  }

  /** Hands the secret over to the caller, who must zero it; undefined when it was not logged. */
  take(label: KeylogLabel): Buffer | undefined {
    const secret = this.secrets.get(label);
    this.secrets.delete(label);
    return secret;
  }

  /** Zeroes every secret still held. */
  wipe(): void {
    for (const secret of this.secrets.values()) secret.fill(0);
    this.secrets.clear();
  }

  private add(line: Buffer): void {
    const entry = parseKeylogLine(line);
    line.fill(0);
    if (!entry) {
      this.malformed++;
      return;
    }
    this.random ??= entry.clientRandom;
    if (!KEPT.has(entry.label)) {
      entry.secret.fill(0);
      return;
    }
    this.secrets.get(entry.label)?.fill(0);
    this.secrets.set(entry.label, entry.secret);
  }
}
