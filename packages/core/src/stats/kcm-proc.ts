import { readFileSync } from 'node:fs';

/**
 * The kernel's KCM counters (/proc/net/kcm_stats), per network namespace: one block for
 * all muxes and one for all attached TCP sockets (psocks), each a header line of names
 * and a line of values. Names are the kernel's ("RX-Msgs", "RX-TooBig", ...).
 */
export interface KcmProcStats {
  readonly mux: Readonly<Record<string, number>>;
  readonly psock: Readonly<Record<string, number>>;
}

const PATH = '/proc/net/kcm_stats';

/** Synchronous, as server.stats() is: the file is a few hundred bytes. Null without AF_KCM. */
export function readKcmProcStats(path = PATH): KcmProcStats | null {
  try {
    return parseKcmProcStats(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

/** Parses the text; a block the kernel did not print comes back empty. */
export function parseKcmProcStats(text: string): KcmProcStats {
  const lines = text.split('\n').map((line) => line.trim().split(/\s+/));
  const block = (title: string): Record<string, number> => {
    const at = lines.findIndex((fields) => fields[0] === title);
    const names = at >= 0 ? lines[at]!.slice(1) : [];
    const values = at >= 0 ? (lines[at + 1] ?? []) : [];
    return Object.fromEntries(names.map((name, i) => [name, Number(values[i] ?? Number.NaN)]).filter(([, v]) => Number.isFinite(v)));
  };
  return { mux: block('MUX'), psock: block('Psock') };
}
