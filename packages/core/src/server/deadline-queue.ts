/**
 * Fires a callback for each in-flight key whose deadline has passed, with one timer.
 *
 * Requests with the same timeout expire in arrival order, so each distinct timeout (the
 * server default plus any per-method overrides) gets a FIFO ordered by deadline. Keys
 * that completed are pruned from the head as it advances, so a FIFO holds little more
 * than the requests actually in flight.
 */
export class DeadlineQueue {
  private readonly fifos = new Map<number, Fifo>();
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(
    private readonly isInFlight: (key: number) => boolean,
    private readonly onExpired: (key: number) => void,
  ) {}

  add(key: number, timeoutMs: number, deadline: number): void {
    let fifo = this.fifos.get(timeoutMs);
    if (!fifo) {
      fifo = new Fifo();
      this.fifos.set(timeoutMs, fifo);
    }
    fifo.prune(this.isInFlight);
    fifo.push(key, deadline);
    if (deadline < this.armedFor) this.arm(deadline);
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    this.fifos.clear();
  }

  private arm(deadline: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = deadline;
    this.timer = setTimeout(this.expire, Math.max(1, deadline - Date.now()));
    this.timer.unref();
  }

  private readonly expire = (): void => {
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [timeoutMs, fifo] of this.fifos) {
      for (;;) {
        fifo.prune(this.isInFlight);
        const head = fifo.peekDeadline();
        if (head === undefined) {
          this.fifos.delete(timeoutMs);
          break;
        }
        if (head > now) {
          next = Math.min(next, head);
          break;
        }
        this.onExpired(fifo.shift());
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  };
}

class Fifo {
  private keys: number[] = [];
  private deadlines: number[] = [];
  private head = 0;

  push(key: number, deadline: number): void {
    this.keys.push(key);
    this.deadlines.push(deadline);
  }

  peekDeadline(): number | undefined {
    return this.head < this.keys.length ? this.deadlines[this.head] : undefined;
  }

  shift(): number {
    const key = this.keys[this.head++]!;
    this.compact();
    return key;
  }

  /** Drops completed keys from the head. */
  prune(isInFlight: (key: number) => boolean): void {
    while (this.head < this.keys.length && !isInFlight(this.keys[this.head]!)) this.head++;
    this.compact();
  }

  private compact(): void {
    if (this.head === this.keys.length) {
      this.keys = [];
      this.deadlines = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
  }
}
