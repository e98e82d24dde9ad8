/**
 * A promise-based, pipelined client for a protobuf service served by kmux: any number of
 * calls in flight on one connection, replies matched by envelope id in whatever order they
 * arrive. protobufjs encodes the requests and decodes the replies, from the same service
 * definition the server loads.
 */
import type { ConnectionOptions } from 'node:tls';
import { KmuxError, activeTraceCarrier, createChannel, type ClientOptions, type KtlsMode, type ServerAddress } from '@kmux/core';
import type protobuf from 'protobufjs';
import { protobufClientCodec } from './client-codec.js';
import { decodeResponseEnvelope, encodeRequestEnvelope, type Metadata } from './envelope.js';
import { handlerName } from './handler.js';
import { checkMessage } from './message-check.js';
import { RpcError } from './rpc-error.js';
import { Status, isStatusCode, statusOfKind, type StatusCode } from './status.js';

export interface ProtobufClientOptions {
  readonly host?: string;
  /** The server's port; or `servers` instead. */
  readonly port?: number;
  /** Several servers of the service, each call to the less busy of two drawn at random, failing ones ejected, a host name standing for all its addresses (core BalancedClient). */
  readonly servers?: readonly ServerAddress[];
  /** Connect with TLS; the server certificate is verified unless you say otherwise. */
  readonly tls?: ConnectionOptions | true;
  /** With `tls`: hand the connection to kTLS after the handshake ('auto', 'require'); default 'off'. See the core ClientOptions. */
  readonly ktls?: KtlsMode;
  /** With kTLS on Linux ≥ 6.14: start a TLS 1.3 KeyUpdate after this many records or bytes under one key. See the core ClientOptions. */
  readonly ktlsKeyUpdateAfter?: ClientOptions['ktlsKeyUpdateAfter'];
  /** Each call's deadline unless the call sets its own. Default 30 s. */
  readonly timeoutMs?: number;
}

export interface CallOptions {
  /**
   * This call's deadline in ms. The client gives up waiting after it, and sends it in the
   * envelope so that the server stops working on the call too.
   */
  readonly timeoutMs?: number;
  /**
   * Sent in the envelope's metadata. The active OpenTelemetry trace context (`traceparent`,
   * `tracestate`) is added when an SDK is registered, unless these name it themselves.
   */
  readonly metadata?: Metadata;
}

/** One method of a client: a request in, a promise of the decoded response out. */
export type UnaryCall<Request, Response> = (request: Request, options?: CallOptions) => Promise<Response>;

/**
 * A message as protobufjs decodes it: fields as properties, defaults on its prototype.
 * Untyped clients know field names only at run time, hence `any`.
 */
export type DecodedMessage = protobuf.Message & Record<string, any>;

/** The methods of a client created without a type argument. */
export type UntypedMethods = Readonly<Record<string, UnaryCall<Record<string, unknown>, DecodedMessage>>>;

export interface ClientControl {
  /** Connects now; optional, since calls connect on demand. */
  connect(): Promise<void>;
  /** Closes the connection; calls in flight reject with UNAVAILABLE. */
  close(): void;
}

/**
 * A client for a service. Pass your own interface of `UnaryCall`s as `Methods` to type it:
 * `createProtobufClient<{ getPrice: UnaryCall<GetPriceRequest, Price> }>(service, …)`.
 */
export type ProtobufClient<Methods extends object = UntypedMethods> = Methods & ClientControl;

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_DEADLINE_MS = 0xffffffff;

/**
 * Every unary method of `service` (from `loadService`, or any protobufjs Service) becomes
 * a method named in lowerCamelCase (`GetPrice` → `getPrice`). A request is a message or a
 * plain object that passes the request type's `verify`. Every failure rejects with an
 * RpcError: the server's status, INVALID_ARGUMENT for a request that does not verify,
 * DEADLINE_EXCEEDED when the deadline passes first, UNAVAILABLE when the connection drops.
 */
export function createProtobufClient<Methods extends object = UntypedMethods>(
  service: protobuf.Service,
  options: ProtobufClientOptions,
): ProtobufClient<Methods> {
  const defaultTimeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const connection = createChannel({
    host: options.host ?? '127.0.0.1',
    port: options.port,
    servers: options.servers,
    tls: options.tls,
    ktls: options.ktls,
    ktlsKeyUpdateAfter: options.ktlsKeyUpdateAfter,
    timeoutMs: defaultTimeoutMs,
    codec: protobufClientCodec,
  });
  let lastId = 0;

  const client: Record<string, unknown> = {
    connect: () => connection.connect(),
    close: () => connection.close(),
  } satisfies ClientControl;

  for (const method of service.methodsArray) {
    if (method.requestStream || method.responseStream) continue; // kmux serves unary methods only
    const name = handlerName(method.name);
    if (Object.hasOwn(client, name)) throw new TypeError(`${service.name}.${method.name} would hide the client's own ${name}()`);
    method.resolve();
    const requestType = method.resolvedRequestType!;
    const responseType = method.resolvedResponseType!;

    client[name] = async (request: Record<string, unknown>, { timeoutMs = defaultTimeoutMs, metadata }: CallOptions = {}) => {
      if (!(timeoutMs > 0)) throw new RangeError(`${name}: timeoutMs must be positive, got ${timeoutMs}`);
      const problem = requestType.verify(request);
      if (problem !== null) {
        throw new RpcError(Status.INVALID_ARGUMENT, `${method.name}: invalid ${requestType.name}: ${problem}`);
      }
      lastId = (lastId + 1) >>> 0;
      const id = lastId;
      const frame = encodeRequestEnvelope({
        id,
        method: method.name,
        deadlineMs: Math.min(Math.ceil(timeoutMs), MAX_DEADLINE_MS),
        payload: requestType.encode(request).finish(),
        metadata: { ...activeTraceCarrier(), ...metadata },
      });
      let reply: Buffer;
      try {
        reply = await connection.request(id, frame, { timeoutMs });
      } catch (error) {
        throw transportFailure(error, method.name, timeoutMs);
      }
      const response = decodeResponseEnvelope(reply);
      if (response.status !== Status.OK) throw serverFailure(response.status, response.message);
      try {
        checkMessage(responseType, response.payload);
        return responseType.decode(response.payload);
      } catch (error) {
        throw new RpcError(Status.INTERNAL, `cannot decode the ${responseType.name} reply of ${method.name}: ${String(error)}`, {
          cause: error,
        });
      }
    };
  }
  return client as ProtobufClient<Methods>;
}

/** A status this client does not know (from a newer server) is reported as UNKNOWN. */
function serverFailure(status: number, message: string): RpcError {
  const known: StatusCode = isStatusCode(status) ? status : Status.UNKNOWN;
  return new RpcError(known, known === status ? message : `status ${status}: ${message}`);
}

/** What the connection reported (timeout, connection lost), with the status it stands for. */
function transportFailure(error: unknown, method: string, timeoutMs: number): RpcError {
  if (!(error instanceof KmuxError)) return new RpcError(Status.INTERNAL, String(error), { cause: error });
  const message = error.kind === 'deadline_exceeded' ? `${method} exceeded its ${timeoutMs} ms deadline` : error.message;
  return new RpcError(statusOfKind(error.kind), message, { cause: error });
}
