/** Refusals a connection may cost per request it is served (native/io_loop.cc has the same rule). */
export const REFUSALS_PER_SERVED = 4;

/**
 * Refusing costs the server too, so a connection is refused past its in-flight limit (its
 * own, or its share of the server's) at most REFUSALS_PER_SERVED times per request it is
 * served, after a first allowance of that many times its limit. Past that it is pushed back
 * into TCP: not read until half of its requests in flight have finished, while the frames
 * already split from that read wait here, in order (at most one read). So a client offering
 * up to 5× what it is served is still shed at once, and a flood that never waits for its
 * replies costs at most 4 refusals per request served, then waits in its own socket.
 */
export class PushBack {
  private credit: number;
  private resumeAt = 0;
  /** Views into the read they came in. */
  private frames: Buffer[] = [];
  private bytes = 0;
  private pushedBack = false;

  constructor(private readonly allowance: number) {
    this.credit = allowance;
  }

  get active(): boolean {
    return this.pushedBack;
  }

  /** Bytes of the frames held. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** A request was refused while `inFlight` were in flight: true if the connection must stop being read now. */
  refused(inFlight: number): boolean {
    if (--this.credit > 0 || this.pushedBack || inFlight === 0) return false;
    this.resumeAt = Math.floor(inFlight / 2);
    this.pushedBack = true;
    return true;
  }

  /** A request finished, `inFlight` are left: true if a pushed-back connection may go on now. */
  finished(inFlight: number): boolean {
    this.credit = Math.min(this.allowance, this.credit + REFUSALS_PER_SERVED);
    if (!this.pushedBack || inFlight > this.resumeAt) return false;
    this.pushedBack = false;
    return true;
  }

  hold(body: Buffer): void {
    this.frames.push(body);
    this.bytes += body.length;
  }

  /** Hands the held frames to `deliver`, oldest first, while it is not pushed back again and `more()` holds. */
  release(deliver: (body: Buffer) => void, more: () => boolean): void {
    const frames = this.frames;
    let next = 0;
    while (next < frames.length && !this.pushedBack && more()) {
      const body = frames[next++]!;
      this.bytes -= body.length;
      deliver(body);
    }
    this.frames = frames.slice(next);
  }

  /** Forgets the held frames and the push-back (the connection stops reading for good). */
  clear(): void {
    this.frames = [];
    this.bytes = 0;
    this.pushedBack = false;
  }
}
