/**
 * The service's methods joined with the handler's functions, built once per worker so
 * that each request costs one map lookup.
 */
import type protobuf from 'protobufjs';
import { handlerFunction, handlerName, type HandlerContext, type HandlerObject } from './handler.js';

export interface BoundMethod {
  readonly requestType: protobuf.Type;
  readonly responseType: protobuf.Type;
  /** Runs the handler function with the handler object as `this`. */
  readonly run: (request: protobuf.Message & Record<string, unknown>, context: HandlerContext) => unknown;
}

export class MethodTable {
  private readonly bound = new Map<string, BoundMethod>();
  /** Declared methods that cannot be served, with the reason a caller gets. */
  private readonly unservable = new Map<string, string>();
  /** The service's full name, without a leading dot (kmux.example.v1.Pricing). */
  readonly serviceName: string;

  constructor(service: protobuf.Service, handler: HandlerObject) {
    this.serviceName = service.fullName.replace(/^\./, '');
    for (const method of service.methodsArray) {
      if (method.requestStream || method.responseStream) {
        this.unservable.set(method.name, `${this.serviceName}.${method.name} streams; kmux serves unary methods only`);
        continue;
      }
      const fn = handlerFunction(handler, method.name);
      if (!fn) {
        this.unservable.set(method.name, `${this.serviceName}.${method.name} has no handler (${handlerName(method.name)})`);
        continue;
      }
      method.resolve(); // finds the message types by name, throwing when one is missing
      this.bound.set(method.name, {
        requestType: method.resolvedRequestType!,
        responseType: method.resolvedResponseType!,
        run: (request, context) => fn.call(handler, request, context),
      });
    }
  }

  /** The method to run for `name`, or the reason it is UNIMPLEMENTED. */
  lookup(name: string): BoundMethod | string {
    return this.bound.get(name) ?? this.unservable.get(name) ?? `unknown method '${name}' in ${this.serviceName}`;
  }
}
