/**
 * The worker half of the Thrift codec: reads each request (plain or in a THeader),
 * answers the health probe, and hands the call to the service it names (one, or several
 * multiplexed), in a server span continued from the THeader's trace context and with its
 * headers in reach of the handler; replies go back in the request's framing.
 */
import type { CallContext, KmuxError, RequestHead, WorkerCodec, WorkerResult } from '@kmux/core';
import { RpcServerTelemetry, type CallOutcome, type TracedMethod } from '@kmux/core/worker';
import {
  ApplicationExceptionType,
  applicationErrorFor,
  applicationExceptionOutcome,
  encodeApplicationException,
  exceptionResult,
  onewayFailure,
  type ThriftResult,
} from './application-exception.js';
import type { ThriftDispatcher } from './dispatcher.js';
import { readFramedMessage, requestHeadOf, type FramedMessage } from './framed-message.js';
import { HEALTH_METHOD, healthReply } from './health-probe.js';
import { MessageType, type ThriftProtocolName } from './message-head.js';
import { describe } from './pending-call.js';
import { withRequestHeaders } from './request-headers.js';
import { replyName, type Route, type ServiceRoutes } from './service-routes.js';
import { encodeTHeader } from './theader.js';

/** `rpc.system.name` of Thrift calls (not one of the conventions' well-known values). */
const THRIFT_RPC_SYSTEM = 'thrift';
/** A Thrift client is told of a passed deadline with an INTERNAL_ERROR exception (applicationErrorFor). */
const DEADLINE_EXCEEDED = applicationExceptionOutcome(ApplicationExceptionType.INTERNAL_ERROR, 'deadline exceeded');

export class ThriftWorker implements WorkerCodec {
  /** Every call the services declare, by the key stats know it by, and the health probe's. */
  readonly methods: readonly string[];
  readonly warnings: readonly string[];
  /** Each declared call as traced (`rpc.method` "Service/method"), by its routing key. */
  private readonly tracedMethods = new Map<string, TracedMethod>();
  private readonly telemetry = new RpcServerTelemetry(THRIFT_RPC_SYSTEM, DEADLINE_EXCEEDED);

  /** `serviceNames`: each service's name in `rpc.method`, by its routing name (the single service's is its module's). */
  constructor(
    private readonly dispatchers: ReadonlyMap<string, ThriftDispatcher>,
    private readonly routes: ServiceRoutes,
    private readonly protocol: ThriftProtocolName,
    serviceNames: ReadonlyMap<string, string>,
  ) {
    const services = [...dispatchers];
    for (const [service, dispatcher] of services) {
      for (const method of dispatcher.methods) {
        this.tracedMethods.set(routes.keyOf(service, method), this.telemetry.method(`${serviceNames.get(service)}/${method}`));
      }
    }
    this.methods = [routes.route(HEALTH_METHOD).key, ...this.tracedMethods.keys()];
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

  handle(body: Buffer, { deadline }: CallContext): WorkerResult | Promise<WorkerResult> {
    let request: FramedMessage;
    try {
      request = readFramedMessage(body, this.protocol);
    } catch (error) {
      return exceptionResult(this.protocol, { name: '', seqid: 0 }, ApplicationExceptionType.PROTOCOL_ERROR, describe(error));
    }
    const { head, theader } = request;
    const route = this.routes.route(head.name);
    const untraced = !this.telemetry.enabled || (head.name === HEALTH_METHOD && head.type === MessageType.CALL);
    if (untraced) return this.respond(request, route);
    const method = this.tracedMethods.get(route.key) ?? this.telemetry.otherMethod(head.name);
    return this.telemetry.traced(method, theader?.headers, deadline, () => this.respond(request, route), outcomeOf);
  }

  /** Runs the request, in its THeader's framing and with its headers as requestHeaders() if it came in one. */
  private respond(request: FramedMessage, route: Route): ThriftResult | Promise<ThriftResult> {
    const { theader } = request;
    if (!theader) return this.run(request, route);
    const wrap = (result: ThriftResult): ThriftResult => (result.reply ? { ...result, reply: encodeTHeader(theader, result.reply) } : result);
    const result = withRequestHeaders(theader.headers, () => this.run(request, route));
    return result instanceof Promise ? result.then(wrap) : wrap(result);
  }

  private run({ head, message }: FramedMessage, route: Route): ThriftResult | Promise<ThriftResult> {
    if (head.type !== MessageType.CALL && head.type !== MessageType.ONEWAY) {
      return exceptionResult(this.protocol, head, ApplicationExceptionType.INVALID_MESSAGE_TYPE, `expected a call, got message type ${head.type}`);
    }
    if (head.name === HEALTH_METHOD && head.type === MessageType.CALL) return healthReply(this.protocol, head.seqid);
    // The service sees its own method name; replies carry it bare, as the stock multiplexed processors send them.
    const call = { ...head, name: route.method };
    const dispatcher = route.service === null ? undefined : this.dispatchers.get(route.service);
    if (dispatcher) return dispatcher.handle(call, message);
    const why = `unknown method: ${head.name.includes(':') ? `no service named in ${head.name}` : `${head.name} names no service (use "Service:method")`}`;
    if (head.type === MessageType.ONEWAY) return onewayFailure(ApplicationExceptionType.UNKNOWN_METHOD, why);
    return exceptionResult(this.protocol, call, ApplicationExceptionType.UNKNOWN_METHOD, why);
  }
}

/** A plain REPLY carries no status: Thrift has none for success. */
function outcomeOf(result: ThriftResult): CallOutcome {
  return result.outcome ?? {};
}
