import type { MethodNameFormat } from '@kmux/native';
import type { KmuxError } from '../errors.js';

/**
 * A codec plugs a wire protocol into kmux. The core only moves length-prefixed frames;
 * a codec has three halves, each used where it runs:
 *
 * - the server front end ({@link ServerCodec}), in the main thread: reads just enough of
 *   a request (id, method) to route, time and count it, and writes error replies that the
 *   core itself produces (overloaded, deadline exceeded, worker died);
 * - the worker half ({@link WorkerCodec}), in every worker thread: decodes the request,
 *   runs the user's handler and encodes the reply. It is loaded by module path, because
 *   functions cannot cross threads;
 * - the client half ({@link ClientCodec}): encodes requests and reads reply ids, so the
 *   generic {@link Client} can match pipelined replies.
 *
 * Frame bodies never include the 4-byte length prefix.
 */

/** What the main thread needs to know about a request. */
export interface RequestHead {
  /** Request id chosen by the client (a Thrift seqid); echoed in the reply. */
  readonly id: number;
  /** Method name, for per-method deadlines and stats. */
  readonly method: string;
  /** True when the client expects no reply (Thrift oneway). */
  readonly oneway: boolean;
  /**
   * A deadline the client sent with the request, in ms from now. The server applies the
   * shorter of this and its own deadline for the method.
   */
  readonly timeoutMs?: number;
  /**
   * What else the codec needs to answer the request in kind (a Thrift THeader's framing);
   * the core passes it back to errorReply within this head, untouched.
   */
  readonly envelope?: unknown;
}

export interface ServerCodec {
  /** Short protocol name for logs and stats, e.g. "thrift-binary". */
  readonly name: string;
  /**
   * Reads the request head. Throws (preferably a ProtocolError) when the frame is not
   * this protocol at all; the core then closes the connection and counts it.
   */
  peek(body: Buffer): RequestHead;
  /** Encodes an error reply body for a request the core fails without running it. */
  errorReply(head: RequestHead, error: KmuxError): Buffer;
  /** Where and how each worker loads its half. */
  readonly worker: WorkerCodecSpec;
  /**
   * For a protocol whose clients may send messages without a length prefix (Thrift's
   * default, unframed transport): how to find where each one ends. The user-space
   * transport then serves such connections; the kernel transports, which need the prefix,
   * refuse them with a clear reason.
   */
  readonly unframed?: UnframedMessages;
  /**
   * Where a request frame names its method, for a transport that reads names outside JS: the
   * native transport's I/O thread reads them to apply `slowMethods`. Without it the native
   * transport is unavailable to a server with `slowMethods`.
   */
  readonly methodNames?: MethodNames;
}

/** How a native reader finds a request's method name, and which names to look for. */
export interface MethodNames {
  /** The wire format, one of those the kmux codecs speak (native/slow_methods.h reads each). */
  readonly format: MethodNameFormat;
  /** The names requests carry on the wire for a call `peek` names `method`; `[method]` unless the codec renames calls. */
  onWire(method: string): readonly string[];
}

/** Finds message ends in a stream without length prefixes, by reading each message's structure. */
export interface UnframedMessages {
  /**
   * Whether a connection whose first byte is `firstByte` sends unframed messages. It must
   * be a byte no length prefix of a frame within maxFrameBytes starts with.
   */
  startsMessage(firstByte: number): boolean;
  /**
   * Measures the message at the start of `bytes`: its whole length, or how many bytes it
   * needs at least before it can be measured further. Throws (a ProtocolError) when the
   * bytes are not a message of this protocol.
   */
  measure(bytes: Buffer): MessageExtent;
  /** Why a kernel transport, which needs length prefixes, refuses such a client: logged with its address. */
  readonly refusal: string;
}

export type MessageExtent = { readonly complete: true; readonly length: number } | { readonly complete: false; readonly atLeast: number };

/** Names the module that builds the worker half, and its structured-clonable options. */
export interface WorkerCodecSpec {
  /** Absolute path or file: URL of a module exporting `createWorkerCodec`. */
  readonly module: string;
  readonly options: unknown;
}

/** Context of one call inside a worker. */
export interface CallContext {
  /** Absolute deadline, in `Date.now()` milliseconds; past it the reply is dropped. */
  readonly deadline: number;
}

/** Outcome of one request in a worker. `reply: null` means no reply is owed (oneway). */
export interface WorkerResult {
  readonly reply: Buffer | null;
  /** The reply reports an error; counted as a failure. */
  readonly failed: boolean;
  /**
   * The reply carries an exception the service declares (a Thrift IDL `throws`): an answer,
   * counted as `exception`, not as a failure. `failed` is then false.
   */
  readonly declaredException?: boolean;
}

export interface WorkerCodec {
  /**
   * The service's method names, as requests name them, when the codec has an IDL. Per-method
   * stats then track only these, and count every other name under `<unknown>`.
   */
  readonly methods?: readonly string[];
  /** Problems found while loading (an IDL method the handler lacks), logged once at start. */
  readonly warnings?: readonly string[];
  /**
   * Decodes, runs the handler and encodes the reply. It must not throw for bad input or
   * handler errors: those become error replies. A throw is treated as a codec bug and
   * fails the request with a generic error.
   */
  handle(body: Buffer, call: CallContext): WorkerResult | Promise<WorkerResult>;
  /**
   * The request head, read in the worker: the same answer as the server half's
   * {@link ServerCodec.peek}, and it throws the same way for a frame that is not this
   * protocol. Kernel transports (KCM, sockmap) hand frames straight to workers, so the
   * worker routes, times and counts them itself. Without it, kernel transports are
   * unavailable for the codec.
   */
  peek?(body: Buffer): RequestHead;
  /**
   * The reply for the request in `body` failing with `error` (overloaded, deadline
   * exceeded, shutting down), or null when no reply is owed (oneway) or the body cannot
   * be read. Kernel transports answer those failures in the worker that read the request;
   * without it they are unavailable for the codec.
   */
  errorReply?(body: Buffer, error: KmuxError): Buffer | null;
}

/** The export a worker codec module provides. */
export type CreateWorkerCodec = (options: unknown) => WorkerCodec | Promise<WorkerCodec>;

export interface ClientCodec {
  /** Reads the id of a reply frame, to match it to its request. */
  replyId(body: Buffer): number;
  /**
   * Whether the reply is a draining server's refusal of a request it did not run (its error
   * reply for `shutting_down` with the message NOT_RUN_SHUTTING_DOWN): the Client then sends
   * the request again on a new connection. Without it such replies reach the caller.
   */
  notRun?(body: Buffer): boolean;
}
