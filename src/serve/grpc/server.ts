/** The gRPC server: the OIP inference service, the typed Predict service, fine-tuning and health, on one port. */
import * as grpc from '@grpc/grpc-js';
import type { ServeConfig } from '../config';
import { protos, tolerantDecoding } from './calls';
import { healthHandlers } from './health';
import { inferenceHandlers } from './inference';
import { predictHandlers } from './predict';
import type { InferenceService } from '../core/service';
import type { JobManager } from '../../finetune/manager';
import { fineTuneHandlers } from './finetune';

export interface GrpcServer {
  server: grpc.Server;
  port: number;
}

export async function startGrpcServer(service: InferenceService, config: ServeConfig, port: number, finetune?: JobManager): Promise<GrpcServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxGrpcMessageBytes,
    'grpc.max_send_message_length': config.maxGrpcMessageBytes,
  });
  const packages = protos();
  server.addService(tolerantDecoding(packages.inference.GRPCInferenceService.service), inferenceHandlers(service));
  server.addService(tolerantDecoding(packages.trident.v1.Predict.service), predictHandlers(service));
  server.addService(packages.grpc.health.v1.Health.service, healthHandlers(service));
  if (finetune) server.addService(tolerantDecoding(packages.trident.finetune.v1.FineTune.service), fineTuneHandlers(service, finetune));
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  return { server, port: bound };
}
