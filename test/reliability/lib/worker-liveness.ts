import type { Server } from '@kmux/core';

/**
 * Whether a server's workers are all live, sampled: a client that waits while a dead worker's
 * replacement loads is not seeing a stall. On KCM a dead worker's share of the requests stays
 * in its KCM socket until the replacement reads it, and a replacement loads its codec from
 * scratch (Thrift under TCG, both workers at once: 5-22 s measured in the VM, see
 * test/reliability/README.md), so the time a client may wait follows the replacements.
 */
export class WorkerLiveness {
  /** Since when every worker has been live (performance.now() ms); Infinity while one is not. */
  private allLiveSince: number;
  /** When each slot was last seen not live (performance.now() ms), or -1 while it is live. */
  private readonly downSince: number[];
  /** The longest a slot was seen not live, in ms. */
  longestDownMs = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly server: Server,
    sampleMs = 100,
  ) {
    const now = performance.now();
    this.allLiveSince = now;
    this.downSince = server.stats().workers.map(() => -1);
    this.timer = setInterval(() => this.sample(), sampleMs).unref();
  }

  /**
   * How long the server has had every worker live since `since` (a client's last progress): the
   * time it could have answered and did not. 0 while a worker is being replaced.
   */
  liveSince(since: number): number {
    return Math.max(0, performance.now() - Math.max(since, this.allLiveSince));
  }

  /** The slots not live for at least `ms` now, as "slot N for S s" each. */
  downLongerThan(ms: number): string[] {
    const now = performance.now();
    return this.downSince.flatMap((since, slot) => (since >= 0 && now - since >= ms ? [`slot ${slot} for ${((now - since) / 1000).toFixed(1)} s`] : []));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const now = performance.now();
    const workers = this.server.stats().workers;
    workers.forEach((worker, slot) => {
      const since = this.downSince[slot]!;
      if (!worker.live && since < 0) this.downSince[slot] = now;
      if (worker.live && since >= 0) {
        this.longestDownMs = Math.max(this.longestDownMs, now - since);
        this.downSince[slot] = -1;
      }
    });
    const allLive = workers.every((worker) => worker.live);
    if (!allLive) this.allLiveSince = Infinity;
    else if (this.allLiveSince === Infinity) this.allLiveSince = now;
  }
}
