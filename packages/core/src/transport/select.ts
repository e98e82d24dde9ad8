import { TransportUnavailableError } from '../errors.js';
import { probeTransports, type TransportName } from './probe.js';

export type { TransportName };

/** Best first: the order `auto` tries them in. */
export const TRANSPORT_PREFERENCE: readonly TransportName[] = ['kcm', 'sockmap', 'userspace'];

/** Which transport a server runs on, and why each better one was not taken. */
export interface TransportReport {
  readonly name: TransportName;
  readonly requested: TransportName | 'auto';
  /** For each transport better than `name`: why it is not in use. */
  readonly notTaken: Readonly<Partial<Record<TransportName, string>>>;
}

/**
 * Picks the transport. `auto` takes the first available in TRANSPORT_PREFERENCE; an
 * explicit choice that is unavailable fails with the reason and never falls back.
 */
export async function selectTransport(requested: TransportName | 'auto'): Promise<TransportReport> {
  const probe = await probeTransports();
  if (requested !== 'auto') {
    const choice = probe[requested];
    if (!choice.available) throw new TransportUnavailableError(requested, choice.reason);
    return { name: requested, requested, notTaken: {} };
  }
  const notTaken: Partial<Record<TransportName, string>> = {};
  for (const name of TRANSPORT_PREFERENCE) {
    const candidate = probe[name];
    if (candidate.available) return { name, requested, notTaken };
    notTaken[name] = candidate.reason;
  }
  // userspace is always available; reaching here means the probe is broken.
  throw new TransportUnavailableError('auto', 'no transport is available');
}

/** One line for logs and the CLI: the transport and why the better ones were not taken. */
export function describeTransport(report: TransportReport): string {
  const skipped = Object.entries(report.notTaken).map(([name, why]) => `${name}: ${why}`);
  return skipped.length ? `${report.name} (${skipped.join('; ')})` : report.name;
}
