/** Each error code's HTTP status and gRPC code, for both transports, in one place. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ErrorCode, TridentError } from '../../base/errors';

const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  invalid_argument: 400,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unauthenticated: 401,
  permission_denied: 403,
  conflict: 409,
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
  conflict: GrpcStatus.FAILED_PRECONDITION,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  cancelled: GrpcStatus.CANCELLED,
  unimplemented: GrpcStatus.UNIMPLEMENTED,
  internal: GrpcStatus.INTERNAL,
});

export const httpStatusOf = (error: TridentError): number => HTTP_STATUS[error.code];

export const grpcStatusOf = (error: TridentError): GrpcStatus => GRPC_STATUS[error.code];

/** Server faults worth a log line: the 5xx that are not load or shutdown. */
export const isServerFault = (error: TridentError): boolean => error.code === 'internal' || error.code === 'unimplemented';
