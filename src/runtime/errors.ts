/** Failures of the execution layer that callers must tell apart; the service maps them to wire errors. */

export type RuntimeErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'resource_exhausted'
  | 'deadline_exceeded'
  | 'cancelled'
  | 'unavailable'
  | 'internal';

export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
  ) {
    super(message);
  }
}
