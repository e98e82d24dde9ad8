import type { AttachedConnection } from './attached-connection.js';

/**
 * The connections with nothing in flight and nothing heard for `idleTimeoutMs`, which the idle
 * sweep closes. Frames the parser counted are activity even before a worker reads them, as
 * user space's reads are: a good client must not be dropped as idle because the workers are slow.
 */
export function idleConnections(connections: Iterable<AttachedConnection>, idleTimeoutMs: number, now: number): AttachedConnection[] {
  const idle: AttachedConnection[] = [];
  for (const connection of connections) {
    if (connection.detaching || connection.counters.inFlight() > 0) continue;
    const last = Math.max(connection.acceptedAt, connection.counters.lastActivity(), connection.parsedAt);
    if (now - last >= idleTimeoutMs && !kernelHolds(connection, now)) idle.push(connection);
  }
  return idle;
}

/**
 * Whether requests wait in the kernel for a busy worker. Asked only of connections about to
 * be dropped: one map lookup each.
 */
function kernelHolds(connection: AttachedConnection, now: number): boolean {
  let parsed: number;
  try {
    parsed = connection.binding.framed().parsed;
  } catch {
    return false;
  }
  if (parsed !== connection.parsedSeen) {
    connection.parsedSeen = parsed;
    connection.parsedAt = now;
    return true;
  }
  // The parser counts a frame at its header: one frame ahead of the workers may be a partial
  // one (the half-frame client, which idleTimeoutMs is for); two or more are whole ones waiting.
  return ((parsed - connection.counters.received()) | 0) >= 2;
}
