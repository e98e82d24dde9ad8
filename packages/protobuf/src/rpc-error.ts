import { Status, isStatusCode, statusName, type StatusCode } from './status.js';

/**
 * Marks RpcErrors across copies of this package: a handler module may resolve its own
 * copy of @kmux/protobuf, and `instanceof` against the server's copy would then miss its
 * errors and turn every status into INTERNAL.
 */
const RPC_ERROR = Symbol.for('kmux.protobuf.RpcError');

/**
 * A failed call with a status. Handlers throw it to answer with that status and message;
 * the client rejects with it for every failed call, whether the server, the connection or
 * the client's own deadline failed it.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';

  constructor(
    readonly status: StatusCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    if (!isStatusCode(status) || status === Status.OK) {
      throw new RangeError(`RpcError needs a status code from 1 to 16 other than OK, got ${String(status)}`);
    }
  }

  /** The status as its name, e.g. "NOT_FOUND". */
  get statusName(): string {
    return statusName(this.status);
  }

  /** True for an RpcError from any copy of this package. */
  static is(error: unknown): error is RpcError {
    return typeof error === 'object' && error !== null && RPC_ERROR in error && isStatusCode((error as { status?: unknown }).status);
  }
}

Object.defineProperty(RpcError.prototype, RPC_ERROR, { value: true });
