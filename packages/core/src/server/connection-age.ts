/** The jitter on maxConnectionAgeMs: connections opened together (a deploy, a balancer's failover) must not all end together. */
const AGE_JITTER = 0.1;

/** How long this connection may live: maxConnectionAgeMs ±10 %, drawn per connection. */
export function connectionLifetimeMs(maxConnectionAgeMs: number, random: () => number = Math.random): number {
  return Math.round(maxConnectionAgeMs * (1 - AGE_JITTER + 2 * AGE_JITTER * random()));
}

/**
 * A connection the server ends (maximum age, drain) with nothing in flight is ended only once
 * it has sent no request for this long: a client that just sent one may have its next on the
 * way, and a request that meets the FIN is never answered, which its client cannot tell from
 * a crash. Until then new requests are refused unrun (`shutting_down`, NOT_RUN_SHUTTING_DOWN):
 * a kmux client sends them again on a new connection and leaves this one.
 */
export const QUIET_BEFORE_END_MS = 200;

/** An aged connection whose client keeps sending (a stock client refused again and again) is ended after this long anyway. */
export const AGED_REFUSALS_MAX_MS = 1000;

/**
 * After its graceful end's FIN, how long a connection waits for the peer to close its side
 * (reading and discarding what it still sends, so that closing does not reset replies still in
 * flight to it) before it is closed anyway.
 */
export const AGED_LINGER_MS = 5000;
