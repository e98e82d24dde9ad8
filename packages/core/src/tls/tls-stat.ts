import { readFileSync } from 'node:fs';

/**
 * /proc/net/tls_stat: the kernel's kTLS counters for this network namespace, e.g.
 * TlsCurrTxSw / TlsCurrRxSw (sockets now using software kTLS), TlsTxSw / TlsRxSw
 * (sockets that ever did), TlsDecryptError (records that failed authentication),
 * TlsRxNoPadViolation, TlsDecryptRetry, TlsTxRekeyOk (6.14+) ...
 * The names differ between kernel versions, so they are passed through as read.
 */
export type TlsStat = Readonly<Record<string, number>>;

/** Parses the file's "Name<whitespace>value" lines. */
export function parseTlsStat(text: string): TlsStat {
  const stat: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(\d+)\s*$/.exec(line);
    if (m) stat[m[1]!] = Number(m[2]);
  }
  return stat;
}

/** The counters, or null when the kernel has no kTLS (the file exists only while tls.ko is loaded). */
export function readTlsStat(path = '/proc/net/tls_stat'): TlsStat | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return parseTlsStat(text);
}
