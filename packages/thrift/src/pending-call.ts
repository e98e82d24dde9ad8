/**
 * One request inside a worker, from the moment the generated Processor hands its decoded
 * arguments to the handler until the reply message is complete.
 */
import { ApplicationExceptionType, exceptionResult, onewayFailure, type ThriftResult } from './application-exception.js';
import { callHandler, type HandlerObject } from './handler-call.js';
import { MessageType, readMessageHead, type MessageHead, type ThriftProtocolName } from './message-head.js';

/** The generated Processor's reply callback (its callback-style handler path). */
type ProcessorReply = (error: unknown, value?: unknown) => void;

export class PendingCall {
  /** Set once the request is answered (or, for oneway, once the handler is done). */
  result: ThriftResult | null = null;
  /** True once the Processor has decoded the arguments and called the handler. */
  handlerStarted = false;
  private handlerError: unknown = null;
  private resolve: ((result: ThriftResult) => void) | null = null;

  constructor(
    private readonly head: MessageHead,
    private readonly protocol: ThriftProtocolName,
    private readonly handler: HandlerObject,
  ) {}

  /** The result, now if the handler finished synchronously, else when it does. */
  settled(): ThriftResult | Promise<ThriftResult> {
    return this.result ?? new Promise((resolve) => (this.resolve = resolve));
  }

  /**
   * Called by the Processor with the decoded arguments, followed by its reply callback
   * unless the method is oneway (no Thrift argument is ever a function).
   */
  run(received: unknown[]): void {
    this.handlerStarted = true;
    const reply = typeof received.at(-1) === 'function' ? (received.pop() as ProcessorReply) : null;
    callHandler(this.handler, this.head.name, received, (error, value) => {
      if (!reply) {
        this.finish(error === null ? { reply: null, failed: false } : onewayFailure(ApplicationExceptionType.INTERNAL_ERROR, describe(error)));
        return;
      }
      this.handlerError = error;
      try {
        // The Processor encodes a result or a declared exception as a REPLY, anything else
        // as an EXCEPTION, and flushes into onReplyMessage.
        reply(error, value);
      } catch (encodeError) {
        this.fail(ApplicationExceptionType.INTERNAL_ERROR, `cannot encode the reply of ${this.head.name}: ${describe(encodeError)}`);
      }
    });
  }

  /** Receives the reply message the Processor wrote. */
  onReplyMessage(message: Buffer): void {
    if (this.handlerError === null) {
      this.finish({ reply: message, failed: false });
    } else if (readMessageHead(message, this.protocol).type === MessageType.EXCEPTION) {
      // An undeclared error. The generated code would send it as type UNKNOWN (and the
      // library even drops the type field); Thrift convention is INTERNAL_ERROR.
      this.fail(ApplicationExceptionType.INTERNAL_ERROR, describe(this.handlerError));
    } else {
      // An answer the IDL declares, not a failure: its status is the exception's IDL name.
      const statusCode = (this.handlerError as { name?: unknown } | null)?.name;
      this.finish({ reply: message, failed: false, declaredException: true, outcome: { statusCode: String(statusCode) } });
    }
  }

  /** Answers with a TApplicationException of `type` (nothing for oneway), as a failure. */
  fail(type: number, message: string): void {
    this.finish(this.head.type === MessageType.ONEWAY ? onewayFailure(type, message) : exceptionResult(this.protocol, this.head, type, message));
  }

  private finish(result: ThriftResult): void {
    if (this.result) return;
    this.result = result;
    this.resolve?.(result);
  }
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
