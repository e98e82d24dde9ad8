/**
 * What a kernel-framed connection's BPF parser counted, read at the peer's FIN, so that
 * the last requests are not lost to the race between the hangup notice and the kernel's
 * asynchronous parsing and delivery (native/frame_tally.h).
 */
export interface FrameTally {
  /** Frames whose length the parser read (mod 2^32). */
  readonly parsed: number;
  /** The stream offset where the last of them ends (mod 2^32). */
  readonly end: number;
  /** Data bytes the TCP socket received, or -1 when it saw no FIN (reset, or still open). */
  readonly received: number;
  /** A length the parser refused (above maxFrameBytes), or 0. */
  readonly refused: number;
}

/**
 * How many whole frames the connection carried in all: a number once that is final,
 * 'pending' while whole frames remain for the parser to count (it runs after the FIN
 * notice, or is paused: call again later), 'unknown' when no FIN came (a reset: the
 * peer reads no replies anyway).
 */
export function framesInAll(tally: Pick<FrameTally, 'parsed' | 'end' | 'received'>): number | 'pending' | 'unknown' {
  if (tally.received < 0) return 'unknown';
  // Bytes after the last parsed frame's end; negative: that frame never completed.
  const after = (tally.received - tally.end) | 0;
  if (after < 0) return (tally.parsed - 1) >>> 0;
  // Under 4 bytes left: no further length header can complete (a frame cut short).
  return after < 4 ? tally.parsed >>> 0 : 'pending';
}
