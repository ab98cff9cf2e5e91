/** Failures of the fine-tune job system that transports must tell apart (HTTP status / gRPC code). */
import { capMessage } from '../text/quote';

export type FinetuneErrorCode =
  /** Bad request or bad data: 400 / INVALID_ARGUMENT. */
  | 'invalid'
  /** No or unknown key: 401 / UNAUTHENTICATED. */
  | 'unauthenticated'
  /** Key not valid, or key-protected actions switched off: 403 / PERMISSION_DENIED. */
  | 'forbidden'
  | 'not_found'
  /** Another job holds the model, or the job is in the wrong state: 409 / FAILED_PRECONDITION. */
  | 'conflict'
  /** Upload, file, sample or pixel limit exceeded: 413 / RESOURCE_EXHAUSTED. */
  | 'too_large'
  /** Job queue full or shutting down: 503 / UNAVAILABLE. */
  | 'unavailable';

export class FinetuneError extends Error {
  override readonly name: string = 'FinetuneError';
  constructor(
    readonly code: FinetuneErrorCode,
    message: string,
  ) {
    super(capMessage(message));
  }
}

/** A second job for a model that already has one queued or running. */
export class JobConflictError extends FinetuneError {
  override readonly name = 'JobConflictError';
  constructor(
    readonly model: string,
    readonly runningJobId: string,
  ) {
    super('conflict', `model "${model}" already has a fine-tune job in progress: ${runningJobId}`);
  }
}
