/** What every gRPC service of the server shares: the protos, tolerant decoding, and the call wrapper. */
import { asTridentError, invalid, TridentError } from '../../base/errors';
import { grpcStatusOf } from '../core/wire-errors';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { presentedKey } from '../../base/keys';
import type { CallContext, InferenceService } from '../core/service';

export const PROTO_DIR = path.join(__dirname, '..', '..', '..', 'proto');
export const PROTO_FILES = ['grpc_service.proto', 'predict.proto', 'health.proto', 'finetune.proto'];

export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

interface Packages {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  trident: { v1: { Predict: grpc.ServiceClientConstructor }; finetune: { v1: { FineTune: grpc.ServiceClientConstructor } } };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
}

let loaded: Packages | undefined;

/** The packages of proto/ (inference, trident.v1, trident.finetune.v1, grpc.health.v1), for servers and clients alike; fields keep the protos' snake_case names. */
export function protos(): Packages {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILES.map((f) => path.join(PROTO_DIR, f)), PROTO_OPTIONS)) as unknown as Packages;
  return loaded;
}

const MALFORMED = Symbol('malformed');

/**
 * The service definition with request decoding that never throws: grpc-js would answer a message
 * that does not parse with INTERNAL, and it is the client's fault, so handlers answer INVALID_ARGUMENT.
 */
export function tolerantDecoding(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const wrapped: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (e) {
          return { [MALFORMED]: (e as Error).message };
        }
      },
    };
  }
  return wrapped;
}

/** Throws INVALID_ARGUMENT for a message that did not parse. */
export function checkDecoded(message: unknown): void {
  const problem = (message as { [MALFORMED]?: string })[MALFORMED];
  if (problem !== undefined) throw invalid(`malformed protobuf message: ${problem}`);
}

export function isMalformed(message: unknown): boolean {
  return (message as { [MALFORMED]?: string })[MALFORMED] !== undefined;
}

/** The error as a gRPC status; its details travel as trailing metadata ("job_id" → "job-id"). */
export function grpcError(error: TridentError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(error.details)) metadata.set(key.replaceAll('_', '-'), value);
  return { code: grpcStatusOf(error), details: error.message, metadata };
}

/** A cancellation this close to the deadline is the deadline's. */
const DEADLINE_SLACK_MS = 25;

/** The call's deadline and a signal that fires when the client cancels. */
export function callContext(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): CallContext {
  const controller = new AbortController();
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  const expiry = Number.isFinite(ms) ? ms : undefined;
  // grpc-js reports an expired deadline as a cancellation; keep the two apart for clients and metrics.
  // The client's clock started first, so its deadline cancel can arrive a little before the expiry
  // the server computed from when it received the call.
  call.once('cancelled', () =>
    controller.abort(
      expiry !== undefined && Date.now() >= expiry - DEADLINE_SLACK_MS ? new TridentError('deadline_exceeded', 'the gRPC deadline passed while the request was queued') : undefined,
    ),
  );
  return { signal: controller.signal, deadline: expiry };
}

export function metadataKey(metadata: grpc.Metadata): string | undefined {
  const first = (key: string) => {
    const v = metadata.get(key)[0];
    return v === undefined ? undefined : String(v);
  };
  return presentedKey(first('authorization'), first('x-api-key'));
}

/** A unary handler run as a service call: metrics, draining, and errors as gRPC statuses. */
export function unary<Req, Res>(
  service: InferenceService,
  endpoint: string,
  handle: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
  modelOf: (request: Req) => string | undefined = () => undefined,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const model = isMalformed(call.request) ? undefined : modelOf(call.request);
    service
      .call({ protocol: 'grpc', endpoint, model }, () => {
        checkDecoded(call.request);
        return handle(call.request, call);
      })
      .then(
        (response) => {
          answered(call);
          callback(null, response);
        },
        (error: TridentError) => {
          answered(call);
          callback(grpcError(error));
        },
      )
      .catch(() => {
        // The callback itself failed (the call is gone): nothing is left to answer.
      });
  };
}

/**
 * A server-streaming handler: `open` runs as a service call (metrics, drain) and returns the
 * stream's messages; writing them happens after the call, so a long watch does not hold a drain.
 */
export function serverStream<Req, Res>(
  service: InferenceService,
  endpoint: string,
  open: (request: Req, call: grpc.ServerWritableStream<Req, Res>) => Promise<AsyncIterableIterator<Res>>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    void (async () => {
      try {
        const messages = await service.call({ protocol: 'grpc', endpoint }, () => {
          checkDecoded(call.request);
          return open(call.request, call);
        });
        call.on('cancelled', () => void messages.return?.());
        for await (const message of messages) {
          if (call.cancelled) break;
          call.write(message);
        }
        call.end();
      } catch (error) {
        call.emit('error', grpcError(asTridentError(error)));
      }
    })();
  };
}

/**
 * grpc-js reports every finished call as cancelled when its stream closes; once answered, a call's
 * context must not abort (each abort builds an exception with a stack trace).
 */
function answered(call: grpc.ServerUnaryCall<unknown, unknown>): void {
  call.removeAllListeners('cancelled');
}

/**
 * A bidirectional stream where each request gets one response, in request order, computed
 * concurrently; a failed request answers with `onError(message)` and the stream goes on.
 */
export function orderedStream<Req, Res>(
  service: InferenceService,
  endpoint: string,
  handle: (request: Req, ctx: CallContext) => Promise<Res>,
  onError: (error: TridentError, request: Req) => Res,
  modelOf: (request: Req) => string | undefined = () => undefined,
): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) => {
    const ctx = callContext(call as grpc.ServerDuplexStream<unknown, unknown>);
    let previous: Promise<void> = Promise.resolve();
    call.on('data', (request: Req) => {
      const model = isMalformed(request) ? undefined : modelOf(request);
      const result = service
        .call({ protocol: 'grpc', endpoint, model }, () => {
          checkDecoded(request);
          return handle(request, ctx);
        })
        .catch((error: TridentError) => onError(error, request));
      previous = previous
        .then(async () => {
          const response = await result;
          if (!call.cancelled && call.writable) call.write(response);
        })
        .catch(() => {
          call.destroy();
        });
    });
    call.on('end', () => void previous.then(() => call.end()));
    call.on('error', () => {});
  };
}
