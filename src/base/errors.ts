/**
 * The one vocabulary of failures that callers must tell apart, used by every layer. Transports map
 * each code once (serve/wire-errors.ts: HTTP status and gRPC code); anything else thrown is
 * `internal`, a server fault.
 */
import { capMessage } from './quote';

export type ErrorCode =
  /** Bad request, bad data, a name that does not parse. */
  | 'invalid_argument'
  | 'not_found'
  /** A body, file, image or upload past its limit. */
  | 'payload_too_large'
  /** A content type, encoding or image format the server does not take. */
  | 'unsupported_media_type'
  /** No key, or one nobody issued. */
  | 'unauthenticated'
  /** A key that is not valid, or key-protected actions switched off. */
  | 'permission_denied'
  /** The resource is in a state that forbids the request (another job holds the model, a job already ending). */
  | 'conflict'
  /** A queue is full. */
  | 'resource_exhausted'
  /** Shutting down, or the model is being loaded or unloaded. */
  | 'unavailable'
  | 'deadline_exceeded'
  /** The client went away. */
  | 'cancelled'
  | 'unimplemented'
  | 'internal';

/**
 * @example
 * throw new TridentError('not_found', `unknown model ${quote(name)}`);   // → HTTP 404, gRPC NOT_FOUND
 */
export class TridentError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Machine-readable context a transport passes on (e.g. `job_id` of a conflicting job). */
    readonly details: Readonly<Record<string, string>> = {},
  ) {
    super(capMessage(message));
    // Subclasses that carry more (the annotation line, the missing library) keep their own name.
    this.name = new.target.name;
  }
}

export const invalid = (message: string) => new TridentError('invalid_argument', message);

/** Any thrown value as a TridentError; anything that is not one becomes `internal`. */
export function asTridentError(error: unknown): TridentError {
  if (error instanceof TridentError) return error;
  return new TridentError('internal', error instanceof Error ? error.message : String(error));
}
