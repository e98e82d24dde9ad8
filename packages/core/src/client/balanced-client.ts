import { KmuxError } from '../errors.js';
import { Client, type ClientOptions, type RequestOptions } from './client.js';
import { ServerResolver, serverKey, type HostLookup, type ResolvedServer, type ServerAddress } from './server-resolver.js';

export interface BalancedClientOptions extends Omit<ClientOptions, 'host' | 'port' | 'connectAttempts'> {
  /** The servers to spread requests over (at least one); a host name stands for every address it resolves to. */
  readonly servers: readonly ServerAddress[];
  /** How long a failing server first gets no requests; doubled at each failure in a row, up to 30 s. Default 1 s. */
  readonly ejectMs?: number;
  /** How often host names are resolved again (also whenever all their addresses fail). Default 30 s. */
  readonly resolveEveryMs?: number;
  /** Resolves a host name to its addresses. Default: the system resolver, `dns.promises.lookup(host, { all: true })`. */
  readonly lookup?: HostLookup;
}

const MAX_EJECT_MS = 30_000;

interface Backend {
  readonly address: ResolvedServer;
  readonly client: Client;
  /** Failures in a row (a connect refused, a connection lost); 0 once a request succeeds. */
  failures: number;
  /** Date.now() until which it gets no requests; then the next request probes it. */
  ejectedUntil: number;
}

/**
 * A client over several servers of one service: each request goes to the less busy (fewer
 * requests outstanding) of two servers drawn at random, the power of two choices, which keeps
 * a slow server from collecting a queue. A server that refuses the connection or loses one is
 * ejected for a while (doubling while it keeps failing); when that passes the next request drawn
 * for it probes it, and one that succeeds restores it. A request that could not be sent (its
 * server refused the connection) goes to another server; one lost with its connection fails with
 * `connection_closed`, as on a single Client, since its server may have run it.
 * A host name counts as every address it resolves to, resolved again every `resolveEveryMs` and
 * when every server fails: new addresses join, and gone ones get no new requests and close once
 * their requests are answered.
 */
export class BalancedClient {
  private backends: Backend[] = [];
  /** Backends whose address is gone, closed once their last request is answered. */
  private readonly leaving = new Set<Backend>();
  private readonly resolver: ServerResolver;
  private readonly clientOptions: Omit<ClientOptions, 'host' | 'port'>;
  private readonly ejectMs: number;
  private readonly resolveEveryMs: number;
  private resolvedAt = -Infinity;
  private resolving: Promise<void> | null = null;
  private closed = false;

  constructor(options: BalancedClientOptions) {
    const { servers, ejectMs = 1000, resolveEveryMs = 30_000, lookup, ...clientOptions } = options;
    if (servers.length === 0) throw new RangeError('servers must name at least one server');
    if (!(resolveEveryMs > 0)) throw new RangeError(`resolveEveryMs must be positive, got ${resolveEveryMs}`);
    this.resolver = new ServerResolver(servers, lookup);
    // One attempt per connect: another server is a better retry than the same one again.
    this.clientOptions = { ...clientOptions, connectAttempts: 1 };
    this.ejectMs = ejectMs;
    this.resolveEveryMs = resolveEveryMs;
  }

  /** Requests waiting for their reply, over all servers. */
  get inFlight(): number {
    return [...this.backends, ...this.leaving].reduce((sum, backend) => sum + backend.client.inFlight, 0);
  }

  /** Each current server address (names resolved; none before the first request or connect), its requests outstanding and whether it is ejected now. */
  servers(): { address: ResolvedServer; inFlight: number; ejected: boolean }[] {
    const now = Date.now();
    return this.backends.map(({ address, client, ejectedUntil }) => ({ address, inFlight: client.inFlight, ejected: ejectedUntil > now }));
  }

  async request(id: number, body: Uint8Array, options?: RequestOptions): Promise<Buffer> {
    const backend = await this.connected();
    try {
      const reply = await backend.client.request(id, body, options);
      backend.failures = 0;
      return reply;
    } catch (error) {
      if (error instanceof KmuxError && error.kind === 'connection_closed') this.eject(backend);
      throw error;
    } finally {
      if (this.leaving.has(backend) && backend.client.inFlight === 0) this.leave(backend);
    }
  }

  /** Sends a frame that expects no reply (Thrift oneway). */
  async send(body: Uint8Array): Promise<void> {
    const backend = await this.connected();
    await backend.client.send(body);
  }

  /** Connects to a server now; optional, since requests connect on demand. */
  async connect(): Promise<void> {
    await this.connected();
  }

  close(): void {
    this.closed = true;
    for (const backend of [...this.backends, ...this.leaving]) backend.client.close();
    this.leaving.clear();
  }

  /** A server picked by the power of two choices, connected; servers that refuse the connection are ejected and others tried. */
  private async connected(): Promise<Backend> {
    if (this.closed) throw new KmuxError('connection_closed', 'client closed');
    // Only the first resolution is waited for; later ones run beside the requests.
    if (this.backends.length === 0) await this.resolve();
    else if (this.resolver.hasNames && Date.now() - this.resolvedAt >= this.resolveEveryMs) void this.resolve().catch(() => undefined);
    if (this.closed) throw new KmuxError('connection_closed', 'client closed'); // closed while resolving
    const tried = new Set<Backend>();
    let resolvedAgain = !this.resolver.hasNames;
    for (;;) {
      const backend = this.pick(tried);
      tried.add(backend);
      try {
        await backend.client.connect();
        return backend;
      } catch (error) {
        this.eject(backend);
        if (this.backends.some((other) => !tried.has(other))) continue;
        if (resolvedAgain) throw error;
        // Every address failed: the names may point elsewhere now.
        resolvedAgain = true;
        await this.resolve().catch(() => undefined);
        if (this.backends.every((other) => tried.has(other))) throw error;
      }
    }
  }

  private resolve(): Promise<void> {
    this.resolvedAt = Date.now();
    this.resolving ??= this.resolver
      .resolve()
      .then((addresses) => this.update(addresses))
      .finally(() => {
        this.resolving = null;
      });
    return this.resolving;
  }

  /** New addresses join; gone ones leave once idle. An address that stays keeps its client and its ejection. */
  private update(addresses: readonly ResolvedServer[]): void {
    if (this.closed) return;
    const current = new Map(this.backends.map((backend) => [serverKey(backend.address), backend]));
    this.backends = addresses.map((address) => current.get(serverKey(address)) ?? this.backendFor(address));
    const kept = new Set(this.backends);
    for (const backend of current.values()) {
      if (kept.has(backend)) continue;
      this.leaving.add(backend);
      if (backend.client.inFlight === 0) this.leave(backend);
    }
  }

  private backendFor(address: ResolvedServer): Backend {
    const { tls } = this.clientOptions;
    // Connected by address, a named server's certificate is still checked against its name (and SNI sends it).
    const named = tls && address.name ? { tls: { servername: address.name, ...(tls === true ? {} : tls) } } : {};
    const client = new Client({ ...this.clientOptions, ...named, host: address.host, port: address.port });
    return { address, client, failures: 0, ejectedUntil: 0 };
  }

  private leave(backend: Backend): void {
    this.leaving.delete(backend);
    backend.client.close();
  }

  private pick(exclude: ReadonlySet<Backend>): Backend {
    const now = Date.now();
    const candidates = this.backends.filter((backend) => !exclude.has(backend));
    const healthy = candidates.filter((backend) => backend.ejectedUntil <= now);
    // All ejected: the one back soonest is probed rather than failing without a try.
    if (healthy.length === 0) return candidates.reduce((a, b) => (b.ejectedUntil < a.ejectedUntil ? b : a));
    if (healthy.length === 1) return healthy[0]!;
    const first = Math.floor(Math.random() * healthy.length);
    const second = (first + 1 + Math.floor(Math.random() * (healthy.length - 1))) % healthy.length;
    const a = healthy[first]!;
    const b = healthy[second]!;
    return b.client.inFlight < a.client.inFlight ? b : a;
  }

  private eject(backend: Backend): void {
    // The requests lost with one connection are one failure.
    if (backend.ejectedUntil > Date.now()) return;
    backend.failures++;
    backend.ejectedUntil = Date.now() + Math.min(MAX_EJECT_MS, this.ejectMs * 2 ** (backend.failures - 1));
  }
}
