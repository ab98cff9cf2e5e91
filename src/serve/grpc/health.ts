/** grpc.health.v1.Health: SERVING while the server is ready, for the server and each of its services. */
import * as grpc from '@grpc/grpc-js';
import type { InferenceService } from '../core/service';

export const HEALTH_SERVICES = ['', 'inference.GRPCInferenceService', 'trident.v1.Predict'];

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export function healthHandlers(service: InferenceService, watchIntervalMs = 1000): grpc.UntypedServiceImplementation {
  const status = (name: string): Status => {
    if (!HEALTH_SERVICES.includes(name)) return 'SERVICE_UNKNOWN';
    return service.ready() ? 'SERVING' : 'NOT_SERVING';
  };
  return {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const current = status(call.request?.service ?? '');
      if (current === 'SERVICE_UNKNOWN') return callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
      callback(null, { status: current });
    },
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      const name = call.request?.service ?? '';
      let last: Status | undefined;
      const send = () => {
        const current = status(name);
        if (current !== last && call.writable) call.write({ status: current });
        last = current;
      };
      send();
      const timer = setInterval(send, watchIntervalMs);
      call.on('cancelled', () => clearInterval(timer));
      call.on('close', () => clearInterval(timer));
    },
  };
}
