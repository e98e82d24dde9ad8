import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { KmuxError } from '../errors.js';

export interface ServerAddress {
  readonly host?: string;
  readonly port: number;
}

/** One address to connect to: an IP address, and the name it was resolved from (for TLS's server name). */
export interface ResolvedServer {
  readonly host: string;
  readonly port: number;
  readonly name?: string;
}

/** Resolves a host name to all its addresses; the default is the system resolver (A and AAAA, /etc/hosts). */
export type HostLookup = (host: string) => Promise<readonly { readonly address: string }[]>;

export const systemLookup: HostLookup = (host) => lookup(host, { all: true });

/**
 * Turns a list of servers into the addresses to connect to: an IP address stays as it is, a
 * name becomes every address the resolver gives for it. A name that fails to resolve (or
 * resolves to nothing) keeps its previous addresses, so a resolver hiccup ejects no server.
 */
export class ServerResolver {
  private readonly previous = new Map<string, readonly ResolvedServer[]>();

  constructor(
    private readonly servers: readonly ServerAddress[],
    private readonly lookupHost: HostLookup = systemLookup,
  ) {}

  /** Whether any server is named rather than addressed, so resolving again may change the answer. */
  get hasNames(): boolean {
    return this.servers.some(({ host }) => host !== undefined && isIP(host) === 0);
  }

  /** Every address, deduplicated; a name that has never resolved is left out, and rejects (`connection_closed`) when nothing is left. */
  async resolve(): Promise<ResolvedServer[]> {
    const results = await Promise.allSettled(this.servers.map((server) => this.addressesOf(server)));
    const unique = new Map<string, ResolvedServer>();
    for (const result of results) if (result.status === 'fulfilled') for (const server of result.value) unique.set(serverKey(server), server);
    if (unique.size === 0) throw (results.find((result) => result.status === 'rejected') as PromiseRejectedResult).reason;
    return [...unique.values()];
  }

  private async addressesOf({ host = '127.0.0.1', port }: ServerAddress): Promise<readonly ResolvedServer[]> {
    if (isIP(host) !== 0) return [{ host, port }];
    const key = `${host}:${port}`;
    try {
      const answers = await this.lookupHost(host);
      if (answers.length === 0) throw new Error(`${host} has no addresses`);
      const resolved = answers.map(({ address }) => ({ host: address, port, name: host }));
      this.previous.set(key, resolved);
      return resolved;
    } catch (error) {
      const kept = this.previous.get(key);
      if (kept) return kept;
      throw new KmuxError('connection_closed', `cannot resolve ${host}: ${String(error)}`, { cause: error });
    }
  }
}

export function serverKey({ host, port }: ResolvedServer): string {
  return `[${host}]:${port}`;
}
