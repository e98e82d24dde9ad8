import { TransportUnavailableError } from '../errors.js';
import type { TlsReport } from '../tls/server-tls.js';
import { probeTransports, type TransportName } from './probe.js';

export type { TransportName };

/** Best first: the order `auto` tries them in. */
export const TRANSPORT_PREFERENCE: readonly TransportName[] = ['kcm', 'sockmap', 'native', 'userspace'];

/**
 * Transports `auto` passes over even when available, and why; they run when asked for by
 * name. sockmap: on a 2-vCPU host it served no more requests per second than the batched
 * user-space transport (it used less CPU per request), as DESIGN.md measured too; the
 * numbers are in docs/benchmarks.md ("Transports compared").
 */
export const EXPLICIT_ONLY: Readonly<Partial<Record<TransportName, string>>> = {
  sockmap: 'sockmap runs only when asked for: on 2 vCPUs it measured no faster than the user-space transport',
  native: 'native runs only when asked for until it is the measured default (docs/native-transport.md)',
};

/** Which transport a server runs on, and why each better one was not taken. */
export interface TransportReport {
  readonly name: TransportName;
  readonly requested: TransportName | 'auto';
  /** For each transport better than `name`: why it is not in use. */
  readonly notTaken: Readonly<Partial<Record<TransportName, string>>>;
  /** A TLS server: whether connections go to kTLS, and why (or why not). */
  readonly tls?: TlsReport;
}

/** Reasons, beyond the kernel, why a server cannot use a transport (its TLS setup, its codec). */
export type TransportConstraints = Readonly<Partial<Record<TransportName, string>>>;

/**
 * Picks the transport. `auto` takes the first available in TRANSPORT_PREFERENCE; an
 * explicit choice that is unavailable fails with the reason and never falls back.
 * `constraints` rule out transports that the kernel would allow but this server cannot use.
 */
export async function selectTransport(
  requested: TransportName | 'auto',
  constraints: TransportConstraints = {},
): Promise<TransportReport> {
  const probe = await probeTransports();
  const whyNot = (name: TransportName): string | null =>
    probe[name].available ? (constraints[name] ?? null) : probe[name].reason;
  if (requested !== 'auto') {
    const reason = whyNot(requested);
    if (reason !== null) throw new TransportUnavailableError(requested, reason);
    return { name: requested, requested, notTaken: {} };
  }
  const notTaken: Partial<Record<TransportName, string>> = {};
  for (const name of TRANSPORT_PREFERENCE) {
    const reason = whyNot(name) ?? EXPLICIT_ONLY[name] ?? null;
    if (reason === null) return { name, requested, notTaken };
    notTaken[name] = reason;
  }
  // userspace is always available; reaching here means the probe is broken.
  throw new TransportUnavailableError('auto', 'no transport is available');
}

/** One line for logs and the CLI: the transport and why the better ones were not taken. */
export function describeTransport(report: TransportReport): string {
  const skipped = Object.entries(report.notTaken).map(([name, why]) => `${name}: ${why}`);
  const transport = skipped.length ? `${report.name} (${skipped.join('; ')})` : report.name;
  if (!report.tls) return transport;
  return `${transport}; TLS records ${report.tls.ktls ? 'in the kernel (kTLS)' : 'in user space'}: ${report.tls.reason}`;
}
