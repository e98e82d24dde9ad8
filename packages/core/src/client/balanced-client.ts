import { KmuxError } from '../errors.js';
import { Client, type ClientOptions, type RequestOptions } from './client.js';

export interface ServerAddress {
  readonly host?: string;
  readonly port: number;
}

export interface BalancedClientOptions extends Omit<ClientOptions, 'host' | 'port' | 'connectAttempts'> {
  /** The servers to spread requests over (at least one). */
  readonly servers: readonly ServerAddress[];
  /** How long a failing server first gets no requests; doubled at each failure in a row, up to 30 s. Default 1 s. */
  readonly ejectMs?: number;
}

const MAX_EJECT_MS = 30_000;

interface Backend {
  readonly address: ServerAddress;
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
 */
export class BalancedClient {
  private readonly backends: Backend[];
  private readonly ejectMs: number;

  constructor(options: BalancedClientOptions) {
    const { servers, ejectMs = 1000, ...clientOptions } = options;
    if (servers.length === 0) throw new RangeError('servers must name at least one server');
    this.ejectMs = ejectMs;
    // One attempt per connect: another server is a better retry than the same one again.
    this.backends = servers.map((address) => ({
      address,
      client: new Client({ ...clientOptions, host: address.host, port: address.port, connectAttempts: 1 }),
      failures: 0,
      ejectedUntil: 0,
    }));
  }

  /** Requests waiting for their reply, over all servers. */
  get inFlight(): number {
    return this.backends.reduce((sum, backend) => sum + backend.client.inFlight, 0);
  }

  /** Each server's address, requests outstanding and whether it is ejected now. */
  servers(): { address: ServerAddress; inFlight: number; ejected: boolean }[] {
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
    for (const backend of this.backends) backend.client.close();
  }

  /** A server picked by the power of two choices, connected; servers that refuse the connection are ejected and others tried. */
  private async connected(): Promise<Backend> {
    const tried = new Set<Backend>();
    for (;;) {
      const backend = this.pick(tried);
      tried.add(backend);
      try {
        await backend.client.connect();
        return backend;
      } catch (error) {
        this.eject(backend);
        if (tried.size === this.backends.length) throw error;
      }
    }
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
