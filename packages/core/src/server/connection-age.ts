/** The jitter on maxConnectionAgeMs: connections opened together (a deploy, a balancer's failover) must not all end together. */
const AGE_JITTER = 0.1;

/** How long this connection may live: maxConnectionAgeMs ±10 %, drawn per connection. */
export function connectionLifetimeMs(maxConnectionAgeMs: number, random: () => number = Math.random): number {
  return Math.round(maxConnectionAgeMs * (1 - AGE_JITTER + 2 * AGE_JITTER * random()));
}

/**
 * After its graceful end's FIN, how long a connection waits for the peer to close its side
 * (reading and discarding what it still sends, so that closing does not reset replies still in
 * flight to it) before it is closed anyway.
 */
export const AGED_LINGER_MS = 5000;
