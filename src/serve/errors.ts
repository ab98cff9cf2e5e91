/** The one error type of the service core, with its mapping to HTTP statuses and gRPC codes. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ImageError } from '../data/image';
import { RuntimeError } from '../runtime/errors';
import { capMessage } from '../text/quote';

export type ErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unauthenticated'
  | 'permission_denied'
  | 'resource_exhausted'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'cancelled'
  | 'unimplemented'
  | 'internal';

const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  invalid_argument: 400,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unauthenticated: 401,
  permission_denied: 403,
  resource_exhausted: 503,
  unavailable: 503,
  deadline_exceeded: 504,
  // nginx's "client closed request"; the client is gone, so only logs and metrics see it.
  cancelled: 499,
  unimplemented: 501,
  internal: 500,
});

const GRPC_STATUS: Readonly<Record<ErrorCode, GrpcStatus>> = Object.freeze({
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  not_found: GrpcStatus.NOT_FOUND,
  payload_too_large: GrpcStatus.RESOURCE_EXHAUSTED,
  unsupported_media_type: GrpcStatus.INVALID_ARGUMENT,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  permission_denied: GrpcStatus.PERMISSION_DENIED,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  cancelled: GrpcStatus.CANCELLED,
  unimplemented: GrpcStatus.UNIMPLEMENTED,
  internal: GrpcStatus.INTERNAL,
});

const IMAGE_ERROR_CODES: Readonly<Record<ImageError['code'], ErrorCode>> = Object.freeze({
  bad_image: 'invalid_argument',
  too_large: 'payload_too_large',
  unsupported: 'unsupported_media_type',
});

/**
 * @example
 * throw new ServiceError('not_found', 'unknown model "x"');   // → HTTP 404, gRPC NOT_FOUND
 */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(capMessage(message));
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  get grpcStatus(): GrpcStatus {
    return GRPC_STATUS[this.code];
  }
}

export const invalid = (message: string) => new ServiceError('invalid_argument', message);

/** Any thrown value as a ServiceError; unknown failures become `internal`. */
export function toServiceError(error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  if (error instanceof RuntimeError) return new ServiceError(error.code, error.message);
  if (error instanceof ImageError) return new ServiceError(IMAGE_ERROR_CODES[error.code], error.message);
  return new ServiceError('internal', error instanceof Error ? error.message : String(error));
}
