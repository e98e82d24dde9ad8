import type { Socket } from 'node:net';
import type { LoadRecorder } from './load-recorder.js';
import { ReplyScanner } from './reply-scanner.js';
import type { RequestTemplate } from './request-template.js';
import { MessageType } from './thrift-wire.js';

/**
 * Each connection owns a disjoint seqid range, so a reply delivered on the wrong
 * connection carries a seqid its driver never sent and is caught as a misroute.
 */
export const SEQID_SPACE = 1 << 24;
export const MAX_CONNECTIONS = 127;

/** A failure after which the run's numbers mean nothing: misroute, bad reply, lost socket. */
export class LoadFatalError extends Error {
  override readonly name = 'LoadFatalError';
  constructor(
    readonly kind: 'misroute' | 'protocol' | 'connection',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Keeps `depth` requests in flight on one socket (closed loop): every reply immediately
 * sends the next request from the same slot. Slot s sends seqids base + s + k·depth, so a
 * reply maps back to its slot with one modulo, and the slot's expected seqid proves it.
 * Replies that arrive in one chunk are answered with one write.
 */
export class ConnectionDriver {
  private readonly base: number;
  /** Seqid each slot waits for; -1 while the slot is idle. */
  private readonly expected: Int32Array;
  /** Seqid each slot sent last, to step from. */
  private readonly lastSeqid: Int32Array;
  private readonly sentAt: BigInt64Array;
  private readonly slotTemplate: Uint16Array;
  private readonly scanner: ReplyScanner;
  private readonly toSend: number[] = [];
  private scheduleCursor: number;
  private inFlight = 0;
  private running = false;
  private failed = false;
  private receivedAt = 0n;
  private drained: (() => void) | null = null;

  constructor(
    private readonly socket: Socket,
    index: number,
    private readonly depth: number,
    private readonly templates: readonly RequestTemplate[],
    private readonly schedule: Uint16Array,
    private readonly recorder: LoadRecorder,
    private readonly onFatal: (error: LoadFatalError) => void,
  ) {
    if (index < 0 || index >= MAX_CONNECTIONS) throw new RangeError(`connection index ${index} out of range`);
    if (depth < 1 || depth > SEQID_SPACE / 2) throw new RangeError(`depth ${depth} out of range`);
    this.base = index * SEQID_SPACE;
    this.expected = new Int32Array(depth).fill(-1);
    this.lastSeqid = Int32Array.from({ length: depth }, (_, slot) => this.base + slot - depth);
    this.sentAt = new BigInt64Array(depth);
    this.slotTemplate = new Uint16Array(depth);
    // Connections start at different points of the mix so the first sends are mixed too.
    this.scheduleCursor = index % schedule.length;
    this.scanner = new ReplyScanner((type, seqid) => this.onReply(type, seqid));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Requests sent and not yet answered. */
  get outstanding(): number {
    return this.inFlight;
  }

  start(): void {
    this.running = true;
    for (let slot = 0; slot < this.depth; slot++) this.toSend.push(slot);
    this.flush();
  }

  /** Stops sending; resolves once every request in flight has been answered. */
  stop(): Promise<void> {
    this.running = false;
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }

  private onData(chunk: Buffer): void {
    this.receivedAt = process.hrtime.bigint();
    try {
      this.scanner.push(chunk);
    } catch (error) {
      this.fail(new LoadFatalError('protocol', `unreadable reply: ${(error as Error).message}`));
      return;
    }
    if (this.failed) return;
    if (this.toSend.length > 0) this.flush();
    if (this.inFlight === 0 && this.drained !== null) this.drained();
  }

  private onReply(type: number, seqid: number): void {
    if (this.failed) return;
    const offset = seqid - this.base;
    const slot = offset % this.depth;
    if (offset < 0 || offset >= SEQID_SPACE || this.expected[slot] !== seqid) {
      this.fail(new LoadFatalError('misroute', `reply with seqid ${seqid} matches no request in flight`));
      return;
    }
    if (type !== MessageType.REPLY && type !== MessageType.EXCEPTION) {
      this.fail(new LoadFatalError('protocol', `reply ${seqid} has message type ${type}`));
      return;
    }
    this.expected[slot] = -1;
    this.inFlight--;
    const micros = Number(this.receivedAt - this.sentAt[slot]) / 1000;
    this.recorder.record(this.slotTemplate[slot], micros, type === MessageType.EXCEPTION);
    if (this.running) this.toSend.push(slot);
  }

  /** Sends one request per queued slot, all in a single write. */
  private flush(): void {
    let bytes = 0;
    for (let i = 0; i < this.toSend.length; i++) {
      const template = this.schedule[(this.scheduleCursor + i) % this.schedule.length];
      bytes += this.templates[template].frame.length;
    }
    const out = Buffer.allocUnsafe(bytes);
    const now = process.hrtime.bigint();
    let at = 0;
    for (const slot of this.toSend) {
      const template = this.schedule[this.scheduleCursor];
      this.scheduleCursor = (this.scheduleCursor + 1) % this.schedule.length;
      const { frame, seqidAt } = this.templates[template];
      frame.copy(out, at);
      // Step the slot's seqid by depth, wrapping inside the connection's range.
      let seqid = this.lastSeqid[slot] + this.depth;
      if (seqid - this.base >= SEQID_SPACE) seqid = this.base + slot;
      out.writeInt32BE(seqid, at + seqidAt);
      this.expected[slot] = seqid;
      this.lastSeqid[slot] = seqid;
      this.sentAt[slot] = now;
      this.slotTemplate[slot] = template;
      at += frame.length;
    }
    this.inFlight += this.toSend.length;
    this.toSend.length = 0;
    this.socket.write(out);
  }

  private fail(error: LoadFatalError): void {
    this.failed = true;
    this.running = false;
    this.socket.destroy();
    this.onFatal(error);
  }
}
