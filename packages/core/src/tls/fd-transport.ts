import { Duplex } from 'node:stream';
import {
  nativeKtls,
  POLL_READABLE,
  POLL_WRITABLE,
  type NativeFdPoll,
  type NativeKtls,
} from '@kmux/native';
import { RECORD_HEADER_BYTES, recordBodyLength, RecordSplitter, type WireRecord } from './record.js';

/** Bytes asked of each read once the transport streams (user-space TLS after a declined handoff). */
const STREAM_READ_BYTES = 64 * 1024;

interface PendingWrite {
  data: Buffer;
  offset: number;
  callback: (error?: Error | null) => void;
}

/**
 * The byte stream under node:tls during the handshake, on a TCP socket fd.
 *
 * Why not Node's own socket: a net.Socket reads whatever has arrived, so at the
 * end of the handshake it may already hold the peer's first application records,
 * which the kernel then never sees. This transport reads one whole TLS record at
 * a time (header, then exactly the body) and stops between records the moment
 * stopReading() is called, which the handshake does synchronously from the
 * TLSSocket's 'secure' / 'secureConnect' event, so every later byte stays in the
 * kernel's receive queue for kTLS.
 *
 * It also keeps each whole record that went over the wire in either direction
 * (`received`, `sent`), from which the handoff learns the server random and how
 * many records the user-space TLS library protected under the traffic keys.
 *
 * Two ways on from the handoff point: detach() gives the fd to the
 * kTLS socket (the transport never touches the fd again), or streamMode() lets
 * user-space TLS go on over this transport when the handoff is declined.
 */
export class FdTransport extends Duplex {
  readonly received: WireRecord[] = [];
  readonly sent: WireRecord[] = [];
  /** Number of _write calls so far: settle() watches it. */
  writes = 0;

  private readonly native: NativeKtls;
  private readonly poll: NativeFdPoll;
  private readonly sentSplitter = new RecordSplitter();
  private readonly header = Buffer.alloc(RECORD_HEADER_BYTES);
  private headerBytes = 0;
  private body: Buffer | null = null;
  private bodyBytes = 0;
  private wantRead = false;
  private readStopped = false;
  private streaming = false;
  private observing = true;
  private detached = false;
  private polled = 0;
  private readonly queue: PendingWrite[] = [];
  private finalCallback: ((error?: Error | null) => void) | null = null;

  /** Takes ownership of `fd` (a connected TCP socket nothing else reads). */
  constructor(readonly fd: number) {
    super({ allowHalfOpen: true });
    this.native = nativeKtls();
    this.poll = new this.native.FdPoll(fd, (error, events) => this.onEvent(error, events));
  }

  /** Bytes handed to write() that the kernel has not taken yet. */
  get pendingWriteBytes(): number {
    return this.queue.reduce((sum, w) => sum + w.data.length - w.offset, 0);
  }

  /** Stops reading at the next record boundary: no byte after the current record is read. */
  stopReading(): void {
    this.readStopped = true;
    this.updatePoll();
  }

  /**
   * Resolves once everything the TLS library wrote has reached the kernel and it
   * has stopped writing. Node's TLS completes each write from setImmediate and
   * may write again then (TLSWrap keeps one write in flight, and a NewSessionTicket
   * can wait behind the previous flight), so this waits for a full turn with no
   * new write and nothing queued.
   */
  async settle(): Promise<void> {
    for (;;) {
      const before = this.writes;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.destroyed) throw new Error('the connection closed during the TLS handshake');
      if (this.writes === before && this.queue.length === 0) return;
    }
  }

  /**
   * Gives the fd to the next owner. Afterwards the transport never reads, writes or
   * closes it; a write from the abandoned TLS library fails. The poll is closed
   * here (libuv drops the fd from epoll synchronously), so the owner makes its own.
   */
  detach(): number {
    if (this.detached) throw new Error('FdTransport: already detached');
    if (this.queue.length > 0) throw new Error('FdTransport: cannot detach with writes pending');
    if (this.headerBytes > 0) throw new Error('FdTransport: cannot detach inside a record');
    this.detached = true;
    this.readStopped = true;
    this.stopObserving();
    this.poll.close();
    return this.fd;
  }

  /** From now on reads whatever has arrived (user-space TLS goes on over this transport). */
  streamMode(): void {
    if (this.headerBytes > 0) throw new Error('FdTransport: cannot switch to streaming inside a record');
    this.stopObserving();
    this.streaming = true;
    this.readStopped = false;
    this.updatePoll();
  }

  override _read(): void {
    this.wantRead = true;
    this.updatePoll();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.detached) {
      callback(new Error('FdTransport: write after the fd was handed to kTLS'));
      return;
    }
    this.writes++;
    if (this.observing) {
      try {
        this.sentSplitter.push(chunk, (record) => this.sent.push(record));
      } catch (error) {
        callback(error as Error);
        return;
      }
    }
    this.queue.push({ data: chunk, offset: 0, callback });
    this.flush();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finalCallback = callback;
    this.flush();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stopObserving();
    for (const pending of this.queue.splice(0)) pending.callback(error ?? new Error('FdTransport destroyed'));
    if (this.detached) {
      callback(error);
      return;
    }
    this.poll.close();
    try {
      this.native.closeFd(this.fd);
    } catch (closeError) {
      callback(error ?? (closeError as Error));
      return;
    }
    callback(error);
  }

  private stopObserving(): void {
    this.observing = false;
    this.received.length = 0;
    this.sent.length = 0;
  }

  private onEvent(error: Error | null, events: number): void {
    if (error) {
      this.destroy(error);
      return;
    }
    if ((events & POLL_WRITABLE) !== 0) this.flush();
    if ((events & POLL_READABLE) !== 0 && !this.destroyed) this.readAvailable();
  }

  private readAvailable(): void {
    try {
      while (this.wantRead && !this.readStopped && !this.destroyed) {
        const more = this.streaming ? this.readChunk() : this.readRecordPart();
        if (!more) break;
      }
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    this.updatePoll();
  }

  /** One recv in streaming mode; false when the socket has nothing more for now. */
  private readChunk(): boolean {
    const buffer = Buffer.allocUnsafe(STREAM_READ_BYTES);
    const result = this.native.recvRecord(this.fd, buffer);
    if (result === null) return false;
    if (result.bytes === 0) {
      this.endOfStream();
      return false;
    }
    if (!this.push(buffer.subarray(0, result.bytes))) this.wantRead = false;
    return true;
  }

  /**
   * Reads the rest of the current record's header or body; pushes the record once
   * whole. False when the socket has nothing more for now.
   */
  private readRecordPart(): boolean {
    if (this.body === null) {
      const result = this.native.recvRecord(this.fd, this.header.subarray(this.headerBytes));
      if (result === null) return false;
      if (result.bytes === 0) {
        this.endOfStream();
        return false;
      }
      this.headerBytes += result.bytes;
      if (this.headerBytes < RECORD_HEADER_BYTES) return true;
      this.body = Buffer.alloc(recordBodyLength(this.header));
      this.bodyBytes = 0;
    }
    // A zero-length body needs no read (and a 0-byte recv would look like the end of the stream).
    if (this.bodyBytes < this.body.length) {
      const result = this.native.recvRecord(this.fd, this.body.subarray(this.bodyBytes));
      if (result === null) return false;
      if (result.bytes === 0) {
        this.endOfStream();
        return false;
      }
      this.bodyBytes += result.bytes;
      if (this.bodyBytes < this.body.length) return true;
    }
    const record = Buffer.concat([this.header, this.body]);
    this.headerBytes = 0;
    this.body = null;
    if (this.observing) this.received.push({ type: record[0]!, bytes: record });
    // The TLS library processes the record synchronously in here and may call stopReading().
    if (!this.push(record)) this.wantRead = false;
    return true;
  }

  private endOfStream(): void {
    if (this.headerBytes > 0) {
      this.destroy(new Error('the peer closed the connection inside a TLS record'));
      return;
    }
    this.readStopped = true;
    this.push(null);
  }

  private flush(): void {
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        const sent = this.native.send(this.fd, head.data.subarray(head.offset));
        if (sent === null) break; // EAGAIN: wait for POLL_WRITABLE
        head.offset += sent;
        if (head.offset < head.data.length) continue;
        this.queue.shift();
        head.callback();
      }
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (this.queue.length === 0 && this.finalCallback) {
      const callback = this.finalCallback;
      this.finalCallback = null;
      try {
        this.native.shutdown(this.fd, 'write');
      } catch (error) {
        callback(error as Error);
        return;
      }
      callback();
    }
    this.updatePoll();
  }

  private updatePoll(): void {
    if (this.detached || this.destroyed) return;
    const events =
      (this.wantRead && !this.readStopped ? POLL_READABLE : 0) | (this.queue.length > 0 ? POLL_WRITABLE : 0);
    if (events === this.polled) return;
    this.polled = events;
    this.poll.start(events);
  }
}
