/** What the fine-tune REST and gRPC adapters share: error mapping and the payload of each event. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { FinetuneError, JobConflictError, type FinetuneErrorCode } from '../finetune/errors';
import type { JobEvent } from '../finetune/record';
import { capMessage } from '../text/quote';

const HTTP_STATUS: Readonly<Record<FinetuneErrorCode, number>> = Object.freeze({
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unavailable: 503,
});

const GRPC_STATUS: Readonly<Record<FinetuneErrorCode, GrpcStatus>> = Object.freeze({
  invalid: GrpcStatus.INVALID_ARGUMENT,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  forbidden: GrpcStatus.PERMISSION_DENIED,
  not_found: GrpcStatus.NOT_FOUND,
  conflict: GrpcStatus.FAILED_PRECONDITION,
  too_large: GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
});

export interface WireError {
  /** undefined: not the client's fault (HTTP 500 / INTERNAL). */
  code?: FinetuneErrorCode;
  message: string;
  /** The job holding the model, for conflicts. */
  jobId?: string;
}

export function wireError(error: unknown): WireError {
  if (error instanceof JobConflictError) return { code: error.code, message: error.message, jobId: error.runningJobId };
  if (error instanceof FinetuneError) return { code: error.code, message: error.message };
  return { message: capMessage(error instanceof Error ? error.message : String(error)) };
}

export const httpStatus = (e: WireError) => (e.code ? HTTP_STATUS[e.code] : 500);
export const grpcStatus = (e: WireError) => (e.code ? GRPC_STATUS[e.code] : GrpcStatus.INTERNAL);

/** The event's content without its type, as SSE `data:` and as the gRPC oneof member. */
export function eventPayload(event: JobEvent): unknown {
  switch (event.type) {
    case 'snapshot':
    case 'end':
      return event.job;
    case 'state':
      return { state: event.state };
    case 'ready':
      return event.ready;
    case 'step':
      return event.step;
    case 'epoch':
      return event.epoch;
    case 'evaluation':
      return event.evaluation;
    case 'decision':
      return event.decision;
    case 'warning':
      return { message: event.warning };
  }
}
