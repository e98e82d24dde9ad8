/**
 * Every failure kmux reports has a kind, so that codecs can map it onto their own
 * wire errors (a TApplicationException type, a protobuf status) and stats can count it.
 */
export type ErrorKind =
  | 'frame_too_large' // a length prefix above maxFrameBytes: closes the connection
  | 'protocol' // a frame the codec cannot read at all: closes the connection
  | 'bad_request' // a frame whose head is readable but whose body is not: fails the request
  | 'unknown_method' // no handler for the method: fails the request
  | 'overloaded' // an in-flight bound was hit: fails the request
  | 'deadline_exceeded' // the request outlived its deadline: fails the request
  | 'worker_died' // the worker running the request exited: fails the request
  | 'handler' // the handler threw or rejected with an undeclared error
  | 'shutting_down' // the server is closing and no longer takes requests
  | 'connection_closed' // client side: the connection went away before the reply
  | 'transport_unavailable'; // an explicitly requested transport cannot run here

export class KmuxError extends Error {
  override readonly name: string = 'KmuxError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The message of a `shutting_down` refusal: a draining server did not run the request. Clients
 * that see it (ClientCodec.notRun) send the request again on a new connection; a request cut
 * off at the drain deadline, which did run, says otherwise.
 */
export const NOT_RUN_SHUTTING_DOWN = 'server is shutting down';

export class FrameTooLargeError extends KmuxError {
  override readonly name = 'FrameTooLargeError';
  constructor(
    readonly length: number,
    readonly limit: number,
  ) {
    super('frame_too_large', `frame length ${length} exceeds maxFrameBytes ${limit}`);
  }
}

export class ProtocolError extends KmuxError {
  override readonly name = 'ProtocolError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('protocol', message, options);
  }
}

export class OverloadedError extends KmuxError {
  override readonly name = 'OverloadedError';
  constructor(scope: 'connection' | 'server' | 'memory', limit: number) {
    super(
      'overloaded',
      scope === 'memory'
        ? `server overloaded: maxBufferedBytes ${limit} reached`
        : `server overloaded: ${scope} in-flight limit ${limit} reached`,
    );
  }
}

/** A connection held a partial frame longer than frameTimeoutMs (a slow or stalled sender): it is closed. */
export class FrameTimeoutError extends KmuxError {
  override readonly name = 'FrameTimeoutError';
  constructor(
    readonly timeoutMs: number,
    readonly bufferedBytes: number,
  ) {
    super('connection_closed', `frame not completed within frameTimeoutMs ${timeoutMs} (${bufferedBytes} bytes of it received)`);
  }
}

export class DeadlineExceededError extends KmuxError {
  override readonly name = 'DeadlineExceededError';
  constructor(method: string, timeoutMs: number) {
    super('deadline_exceeded', `${method || 'request'} exceeded its ${timeoutMs} ms deadline`);
  }
}

export class WorkerDiedError extends KmuxError {
  override readonly name = 'WorkerDiedError';
  constructor(slot: number, reason: string) {
    super('worker_died', `worker ${slot} died while running the request: ${reason}`);
  }
}

export class TransportUnavailableError extends KmuxError {
  override readonly name = 'TransportUnavailableError';
  constructor(transport: string, reason: string) {
    super('transport_unavailable', `transport '${transport}' is unavailable: ${reason}`);
  }
}
