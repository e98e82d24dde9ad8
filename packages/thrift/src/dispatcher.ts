/**
 * Runs one Thrift message through a service's generated Processor and the user's handler.
 * Each frame holds exactly one message, so nothing ever reads past its end (the stock
 * server finds message ends by catching an underrun exception per request).
 */
import { ApplicationExceptionType, exceptionResult, onewayFailure, type ThriftResult } from './application-exception.js';
import type { HandlerObject } from './handler-call.js';
import { readingProtocol, writingProtocol } from './library-protocol.js';
import { MessageType, type MessageHead, type ThriftProtocolName } from './message-head.js';
import { PendingCall, describe } from './pending-call.js';

/** The generated `Processor` class of a `thrift --gen js:node` service module. */
export type GeneratedProcessor = new (handler: object) => object;

type ProcessMethod = (this: object, seqid: number, input: unknown, output: unknown) => void;

const PROCESS_PREFIX = 'process_';

/** The service's method names: the generated Processor has a `process_<name>` for each. */
export function serviceMethods(Processor: GeneratedProcessor): string[] {
  return Object.getOwnPropertyNames(Processor.prototype)
    .filter((key) => key.startsWith(PROCESS_PREFIX))
    .map((key) => key.slice(PROCESS_PREFIX.length));
}

/** Runs one service's calls through its generated Processor and the user's handler. */
export class ThriftDispatcher {
  /** The service's methods, as it declares them. */
  readonly methods: readonly string[];
  private readonly processor: Record<string, unknown>;
  /** The request being fed to the Processor; its handler call happens synchronously inside. */
  private active: PendingCall | null = null;

  constructor(
    Processor: GeneratedProcessor,
    private readonly handler: HandlerObject,
    private readonly protocol: ThriftProtocolName,
    /** What loading the handler warned about (checkHandler). */
    readonly warnings: readonly string[] = [],
  ) {
    this.methods = serviceMethods(Processor);
    this.processor = new Processor(this.relayHandler()) as Record<string, unknown>;
  }

  /** Runs the CALL or ONEWAY message in `body`, whose header `head` names the method as this service declares it. */
  handle(head: MessageHead, body: Buffer): ThriftResult | Promise<ThriftResult> {
    const process = this.processor[`${PROCESS_PREFIX}${head.name}`];
    if (typeof process !== 'function' || typeof this.handler[head.name] !== 'function') {
      const why = `unknown method ${head.name}`;
      if (head.type === MessageType.ONEWAY) return onewayFailure(ApplicationExceptionType.UNKNOWN_METHOD, why);
      return exceptionResult(this.protocol, head, ApplicationExceptionType.UNKNOWN_METHOD, why);
    }
    const call = new PendingCall(head, this.protocol, this.handler);
    this.active = call;
    try {
      (process as ProcessMethod).call(
        this.processor,
        head.seqid,
        readingProtocol(this.protocol, body.subarray(head.length)),
        writingProtocol(this.protocol, (message) => call.onReplyMessage(message)),
      );
    } catch (error) {
      if (call.handlerStarted) {
        call.fail(ApplicationExceptionType.INTERNAL_ERROR, describe(error));
      } else {
        call.fail(ApplicationExceptionType.PROTOCOL_ERROR, `cannot decode the arguments of ${head.name}: ${describe(error)}`);
      }
    } finally {
      this.active = null;
    }
    return call.settled();
  }

  /**
   * The handler object given to the Processor: one relay per service method, declaring an
   * impossible arity so that the Processor always takes its callback path. Its promise
   * path needs `thrift.Q`, which thrift 0.24 no longer exports, and would pick the
   * handler style by arity alone.
   */
  private relayHandler(): object {
    const relay: Record<string, (...received: unknown[]) => void> = {};
    for (const method of this.methods) {
      const run = (...received: unknown[]): void => this.active?.run(received);
      Object.defineProperty(run, 'length', { value: -1 });
      relay[method] = run;
    }
    return relay;
  }

}
