/**
 * The worker half of the Thrift codec: reads each request (plain or in a THeader),
 * answers the health probe, and hands the call to the service it names (one, or several
 * multiplexed), with the THeader's headers in reach of the handler; replies go back in the
 * request's framing.
 */
import type { KmuxError, RequestHead, WorkerCodec, WorkerResult } from '@kmux/core';
import { ApplicationExceptionType, applicationErrorFor, encodeApplicationException, exceptionResult } from './application-exception.js';
import type { ThriftDispatcher } from './dispatcher.js';
import { readFramedMessage, requestHeadOf, type FramedMessage } from './framed-message.js';
import { HEALTH_METHOD, healthReply } from './health-probe.js';
import { MessageType, type ThriftProtocolName } from './message-head.js';
import { describe } from './pending-call.js';
import { withRequestHeaders } from './request-headers.js';
import { replyName, type ServiceRoutes } from './service-routes.js';
import { encodeTHeader } from './theader.js';

export class ThriftWorker implements WorkerCodec {
  /** Every call the services declare, by the key stats know it by, and the health probe's. */
  readonly methods: readonly string[];
  readonly warnings: readonly string[];

  constructor(
    private readonly dispatchers: ReadonlyMap<string, ThriftDispatcher>,
    private readonly routes: ServiceRoutes,
    private readonly protocol: ThriftProtocolName,
  ) {
    const services = [...dispatchers];
    this.methods = [
      routes.route(HEALTH_METHOD).key,
      ...services.flatMap(([service, dispatcher]) => dispatcher.methods.map((method) => routes.keyOf(service, method))),
    ];
    this.warnings = services.flatMap(([, dispatcher]) => dispatcher.warnings);
  }

  peek(body: Buffer): RequestHead {
    return requestHeadOf(readFramedMessage(body, this.protocol), this.routes);
  }

  errorReply(body: Buffer, error: KmuxError): Buffer | null {
    let request: FramedMessage;
    try {
      request = readFramedMessage(body, this.protocol);
    } catch {
      return null;
    }
    const { head, theader } = request;
    if (head.type === MessageType.ONEWAY) return null;
    const name = replyName(this.routes.route(head.name).key);
    const reply = encodeApplicationException(this.protocol, name, head.seqid, applicationErrorFor(error));
    return theader ? encodeTHeader(theader, reply) : reply;
  }

  handle(body: Buffer): WorkerResult | Promise<WorkerResult> {
    let request: FramedMessage;
    try {
      request = readFramedMessage(body, this.protocol);
    } catch (error) {
      return exceptionResult(this.protocol, { name: '', seqid: 0 }, ApplicationExceptionType.PROTOCOL_ERROR, describe(error));
    }
    const { theader } = request;
    if (!theader) return this.run(request);
    const wrap = (result: WorkerResult): WorkerResult => (result.reply ? { ...result, reply: encodeTHeader(theader, result.reply) } : result);
    const result = withRequestHeaders(theader.headers, () => this.run(request));
    return result instanceof Promise ? result.then(wrap) : wrap(result);
  }

  private run({ head, message }: FramedMessage): WorkerResult | Promise<WorkerResult> {
    if (head.type !== MessageType.CALL && head.type !== MessageType.ONEWAY) {
      return exceptionResult(this.protocol, head, ApplicationExceptionType.INVALID_MESSAGE_TYPE, `expected a call, got message type ${head.type}`);
    }
    if (head.name === HEALTH_METHOD && head.type === MessageType.CALL) return healthReply(this.protocol, head.seqid);
    const route = this.routes.route(head.name);
    // The service sees its own method name; replies carry it bare, as the stock multiplexed processors send them.
    const call = { ...head, name: route.method };
    const dispatcher = route.service === null ? undefined : this.dispatchers.get(route.service);
    if (dispatcher) return dispatcher.handle(call, message);
    if (head.type === MessageType.ONEWAY) return { reply: null, failed: true };
    const why = head.name.includes(':') ? `no service named in ${head.name}` : `${head.name} names no service (use "Service:method")`;
    return exceptionResult(this.protocol, call, ApplicationExceptionType.UNKNOWN_METHOD, `unknown method: ${why}`);
  }
}
