/** Test helpers: a real server on loopback over a fresh repository, and clients for both transports. */
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import sharp from 'sharp';
import { makeRepository, type RepositoryModel } from '../../runtime/testing/repository';
import { serveConfig, type ServeConfig } from '../config';
import { protos } from '../grpc/calls';
import { fineTuneService } from '../grpc/finetune';
import { startServer, type RunningServer } from '../server';

export interface TestServer {
  url: string;
  grpcAddress: string;
  root: string;
  server: RunningServer;
  close(): Promise<void>;
}

export async function startTestServer(
  overrides: Partial<ServeConfig> = {},
  models: RepositoryModel[] = [{ name: 'tiny', versions: [1, 2] }],
): Promise<TestServer> {
  const root = await makeRepository(models);
  const config = serveConfig({
    models: root,
    host: '127.0.0.1',
    httpPort: 0,
    grpcPort: 0,
    threads: 1,
    maxBatch: 8,
    apiKeys: ['test-key'],
    drainTimeoutMs: 5000,
    ...overrides,
  });
  const server = await startServer(config, pino({ level: 'silent' }));
  return {
    url: `http://127.0.0.1:${server.httpPort}`,
    grpcAddress: `127.0.0.1:${server.grpcPort}`,
    root,
    server,
    close: async () => void (await server.drain(1000)),
  };
}

const CLIENT_OPTIONS = { 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 64 * 1024 * 1024 };

export type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function grpcClients(address: string) {
  const p = protos();
  const credentials = grpc.credentials.createInsecure();
  return {
    inference: new p.inference.GRPCInferenceService(address, credentials, CLIENT_OPTIONS) as unknown as Client,
    predict: new p.trident.v1.Predict(address, credentials, CLIENT_OPTIONS) as unknown as Client,
    health: new p.grpc.health.v1.Health(address, credentials, CLIENT_OPTIONS) as unknown as Client,
    finetune: new (fineTuneService())(address, credentials, CLIENT_OPTIONS) as unknown as Client,
    close() {
      this.inference.close();
      this.predict.close();
      this.health.close();
      this.finetune.close();
    },
  };
}

/** Calls a unary method and resolves with the response or rejects with the TridentError-like status. */
export function unaryCall<T = Record<string, unknown>>(
  client: Client,
  method: string,
  request: unknown,
  options: { metadata?: grpc.Metadata; deadline?: number } = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const callback = (error: grpc.ServiceError | null, response: T) => (error ? reject(error) : resolve(response));
    const metadata = options.metadata ?? new grpc.Metadata();
    const callOptions = options.deadline ? { deadline: options.deadline } : {};
    (client[method] as (...a: unknown[]) => void).call(client, request, metadata, callOptions, callback);
  });
}

/** Sends raw bytes as the request of `path`, to test what the server does with a broken message. */
export function rawUnaryCall(client: grpc.Client, path: string, bytes: Buffer): Promise<unknown> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      (error, response) => (error ? reject(error) : resolve(response)),
    ),
  );
}

export function solidImage(width: number, height: number, colour = '#c04020', format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: colour } })
    .toFormat(format)
    .toBuffer();
}

/** A small picture with structure, so that predictions differ from image to image. */
export function patternImage(width: number, height: number, seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + seed * 101 + ((i / 3 / width) | 0) * seed) & 0xff;
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** A float32 image tensor [n, 3, 16, 16] filled from a seed. */
export function tinyTensor(n: number, seed: number): Float32Array {
  const data = new Float32Array(n * 3 * 16 * 16);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.1 + seed);
  return data;
}

/** OIP model metadata of the harness's `tiny` model (versions 1 and 2), the same on REST and gRPC. */
export const TINY_METADATA = {
  name: 'tiny',
  versions: ['1', '2'],
  platform: 'onnxruntime_onnx',
  inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 3, 16, 16] }],
  outputs: [
    { name: 'class_probs', datatype: 'FP32', shape: [-1, 3] },
    { name: 'objectness', datatype: 'FP32', shape: [-1, 1] },
    { name: 'box', datatype: 'FP32', shape: [-1, 4] },
  ],
};
