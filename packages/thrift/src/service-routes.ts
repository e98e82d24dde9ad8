/**
 * Routes Thrift calls to services. Thrift's multiplexed protocol (TMultiplexedProtocol)
 * names a call "Service:method" on CALL and ONEWAY messages, and the stock
 * TMultiplexedProcessor splits the name at its first ':'. A server of one service takes
 * the names as they are; a server of several takes "Service:method", and bare names too
 * when it has a default service (clients that predate the multiplexing).
 */

/** The single-service form's one service: no name on the wire. */
export const SINGLE_SERVICE = '';
const SEPARATOR = ':';

export interface Route {
  /** The service to run the call, or null when no service has that name. */
  readonly service: string | null;
  /** The method name as the service declares it. */
  readonly method: string;
  /** The name stats and deadlines know the call by: "Service:method" when multiplexed. */
  readonly key: string;
}

export class ServiceRoutes {
  private readonly names: ReadonlySet<string>;

  /** `services` empty: the single-service form. */
  constructor(
    services: readonly string[],
    private readonly defaultService: string | undefined,
  ) {
    this.names = new Set(services);
  }

  get multiplexed(): boolean {
    return this.names.size > 0;
  }

  /** The key (Route.key) of `service`'s `method`. */
  keyOf(service: string, method: string): string {
    return service === SINGLE_SERVICE ? method : `${service}${SEPARATOR}${method}`;
  }

  /** The names a call known by `key` can carry on the wire: the key, and a default service's bare name. */
  wireNames(key: string): string[] {
    const names = [key];
    const prefix = `${this.defaultService}${SEPARATOR}`;
    if (this.defaultService !== undefined && key.startsWith(prefix)) names.push(key.slice(prefix.length));
    return names.filter((name) => this.route(name).key === key);
  }

  route(name: string): Route {
    if (!this.multiplexed) return { service: SINGLE_SERVICE, method: name, key: name };
    const at = name.indexOf(SEPARATOR);
    if (at < 0) {
      const service = this.defaultService ?? null;
      return { service, method: name, key: service === null ? name : `${service}${SEPARATOR}${name}` };
    }
    const service = name.slice(0, at);
    return { service: this.names.has(service) ? service : null, method: name.slice(at + 1), key: name };
  }
}

/**
 * The name a reply carries for a call known by `key`: the bare method, as the stock
 * multiplexed processors answer (the stock Node client finds its `recv_<name>` by it).
 */
export function replyName(key: string): string {
  return key.slice(key.indexOf(SEPARATOR) + 1);
}
