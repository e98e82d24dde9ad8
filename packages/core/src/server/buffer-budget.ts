/** Paused connections resume once usage is back under this share of the budget, not on every freed byte. */
const RESUME_BELOW = 0.75;

/**
 * The server-wide byte budget of the user-space transport (`maxBufferedBytes`): bytes held
 * for partial frames, requests in flight and replies not yet sent, over all connections.
 * Per-connection limits alone allow maxConnections × maxFrameBytes. Past the budget the
 * transport sheds new requests as "overloaded" and connections holding bytes stop being
 * read (they wait here), so memory stays near the budget instead of growing with clients.
 */
export class BufferBudget {
  private used = 0;
  /** The most bytes held at once. */
  peak = 0;
  private readonly waiting = new Set<() => void>();
  /** Requests answered "overloaded" because the budget was spent. */
  shed = 0;
  /** Times a connection stopped being read because the budget was spent. */
  pauses = 0;

  constructor(readonly limit: number) {}

  get bytes(): number {
    return this.used;
  }

  get over(): boolean {
    return this.used > this.limit;
  }

  get pausedConnections(): number {
    return this.waiting.size;
  }

  add(delta: number): void {
    this.used += delta;
    if (this.used > this.peak) this.peak = this.used;
    if (delta < 0 && this.waiting.size > 0 && this.used <= this.limit * RESUME_BELOW) {
      const resumes = [...this.waiting];
      this.waiting.clear();
      for (const resume of resumes) resume();
    }
  }

  /** Calls `resume` once usage is back under the resume mark. */
  wait(resume: () => void): void {
    if (this.waiting.has(resume)) return;
    this.waiting.add(resume);
    this.pauses++;
  }

  cancel(resume: () => void): void {
    this.waiting.delete(resume);
  }
}
