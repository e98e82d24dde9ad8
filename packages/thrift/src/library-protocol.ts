/**
 * Bridges frame bytes and the thrift library's protocol objects without a socket: a
 * protocol reading one in-memory message, and one writing into a collector whose flush
 * hands over the encoded message.
 */
import thrift from 'thrift';
import type { TProtocol, TTransport } from 'thrift';
import type { ThriftProtocolName } from './message-head.js';

const PROTOCOL_CLASSES: Record<ThriftProtocolName, new (transport: TTransport) => TProtocol> = {
  binary: thrift.TBinaryProtocol,
  compact: thrift.TCompactProtocol,
};

export function protocolClass(protocol: ThriftProtocolName): new (transport: TTransport) => TProtocol {
  return PROTOCOL_CLASSES[protocol];
}

/** A protocol reading exactly `bytes`; reading past the end throws, it never waits for more. */
export function readingProtocol(protocol: ThriftProtocolName, bytes: Buffer): TProtocol {
  // TFramedTransport over a ready buffer is a plain in-memory reader (no length prefix).
  return new PROTOCOL_CLASSES[protocol](new thrift.TFramedTransport(bytes));
}

/**
 * The output side of a transport: collects what a protocol writes and passes the whole
 * message to `onFlush` when the writer flushes. The protocols call only write,
 * setCurrSeqId and flush on an output transport.
 */
export class MessageCollector {
  private chunks: Buffer[] = [];

  constructor(private readonly onFlush: (message: Buffer) => void) {}

  write(chunk: Buffer | string): void {
    this.chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }

  setCurrSeqId(): void {}

  /** Drops what was written since the last flush (a message that failed to encode). */
  discard(): void {
    this.chunks = [];
  }

  flush(): void {
    const message = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.onFlush(message);
  }

  /** This collector typed as the library's transport interface, for protocol constructors. */
  asTransport(): TTransport {
    return this as unknown as TTransport;
  }
}

/** A protocol whose flushed message goes to `onFlush`. */
export function writingProtocol(protocol: ThriftProtocolName, onFlush: (message: Buffer) => void): TProtocol {
  return new PROTOCOL_CLASSES[protocol](new MessageCollector(onFlush).asTransport());
}
