import type { WorkerResult } from '../codec/codec.js';
import type { ErrorKind } from '../errors.js';

/**
 * How a request ended, as counted by the server. `exception`: the handler answered with an
 * exception the service declares (a Thrift IDL `throws`), an answer rather than a failure.
 */
export type Outcome = 'ok' | 'exception' | 'failed' | ErrorKind;

/** The outcome a worker codec's result counts as. */
export function resultOutcome(result: WorkerResult): Outcome {
  if (result.declaredException) return 'exception';
  return result.failed ? 'failed' : 'ok';
}
