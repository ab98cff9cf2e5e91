import type { Command } from 'commander';
import { parseDevice } from '../../runtime/session';
import { DEFAULT_CONFIG, serveConfig, type ServeConfig } from '../../serve/config';
import { createLogger, startServer } from '../../serve/server';
import { parseNumber } from '../format';

interface ServeFlags {
  models: string;
  host: string;
  http: string;
  grpc: string | false;
  device: string;
  instances: string;
  threads: string;
  maxBatch: string;
  maxQueueDelay: string;
  maxQueue: string;
  versions: string;
  maxBody: string;
  maxGrpcMessage: string;
  maxPixels: string;
  maxImages: string;
  topK: string;
  objectThreshold: string;
  defaultModel?: string;
  cors?: string;
  apiKey: string[];
  auth: boolean;
  drainTimeout: string;
  logLevel: string;
}

const MIB = 1024 * 1024;

function toConfig(flags: ServeFlags): ServeConfig {
  const int = (value: string, flag: string, min = 0) => parseNumber(value, flag, { integer: true, min });
  const versions = flags.versions;
  if (versions !== 'all' && versions !== 'latest') throw new Error(`--versions must be all or latest, got "${versions}"`);
  const envKeys = (process.env.TRIDENT_API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  return serveConfig({
    models: flags.models,
    host: flags.host,
    httpPort: int(flags.http, '--http'),
    grpcPort: flags.grpc === false ? undefined : int(flags.grpc, '--grpc'),
    device: parseDevice(flags.device),
    instances: int(flags.instances, '--instances', 1),
    threads: int(flags.threads, '--threads'),
    maxBatch: int(flags.maxBatch, '--max-batch', 1),
    maxQueueDelayMs: parseNumber(flags.maxQueueDelay, '--max-queue-delay', { min: 0 }),
    maxQueueSize: int(flags.maxQueue, '--max-queue', 1),
    versionPolicy: versions,
    maxBodyBytes: Math.round(parseNumber(flags.maxBody, '--max-body', { min: 0.001 }) * MIB),
    maxGrpcMessageBytes: Math.round(parseNumber(flags.maxGrpcMessage, '--max-grpc-message', { min: 0.001 }) * MIB),
    maxPixels: int(flags.maxPixels, '--max-pixels', 1),
    maxImages: int(flags.maxImages, '--max-images', 1),
    topK: int(flags.topK, '--top-k', 1),
    objectThreshold: parseNumber(flags.objectThreshold, '--object-threshold', { min: 0, max: 1 }),
    defaultModel: flags.defaultModel,
    corsOrigins: flags.cors ? flags.cors.split(',').map((o) => o.trim()).filter(Boolean) : [],
    apiKeys: [...flags.apiKey, ...envKeys],
    authDisabled: !flags.auth,
    drainTimeoutMs: parseNumber(flags.drainTimeout, '--drain-timeout', { min: 0 }) * 1000,
  });
}

export function register(program: Command): void {
  const d = DEFAULT_CONFIG;
  program
    .command('serve')
    .description('serve the models of a repository over REST (Open Inference Protocol + image predict) and gRPC')
    .option('--models <dir>', 'model repository: NAME/VERSION/ folders', d.models)
    .option('--host <address>', 'address to listen on', d.host)
    .option('--http <port>', 'HTTP port (0 = any free port)', String(d.httpPort))
    .option('--grpc <port>', 'gRPC port (0 = any free port)', String(d.grpcPort))
    .option('--no-grpc', 'do not serve gRPC')
    .option('--device <cpu|cuda|auto>', 'execution provider', d.device)
    .option('--instances <n>', 'worker threads (sessions) per model version', String(d.instances))
    .option('--threads <n>', 'ONNX Runtime threads per session (0 = ONNX Runtime decides)', String(d.threads))
    .option('--max-batch <n>', 'most samples per model run', String(d.maxBatch))
    .option('--max-queue-delay <ms>', 'how long an idle worker waits to fill a batch', String(d.maxQueueDelayMs))
    .option('--max-queue <n>', 'samples allowed to wait per model version before refusing with 503', String(d.maxQueueSize))
    .option('--versions <all|latest>', 'which versions of each model to serve', d.versionPolicy)
    .option('--max-body <MiB>', 'largest HTTP request body', String(d.maxBodyBytes / MIB))
    .option('--max-grpc-message <MiB>', 'largest gRPC message (grpc-js defaults to 4)', String(d.maxGrpcMessageBytes / MIB))
    .option('--max-pixels <n>', 'largest image (width × height) decoded', String(d.maxPixels))
    .option('--max-images <n>', 'most images per predict request', String(d.maxImages))
    .option('--top-k <n>', 'classes listed per prediction by default', String(d.topK))
    .option('--object-threshold <p>', 'objectness probability from which an object is present', String(d.objectThreshold))
    .option('--default-model <name>', 'model for /v2/predict and gRPC Predict without a model name')
    .option('--cors <origins>', 'comma-separated allowed origins, or *')
    .option('--api-key <key>', 'API key for repository load/unload (repeatable; also TRIDENT_API_KEYS)', (v: string, all: string[]) => [...all, v], [])
    .option('--no-auth', 'allow repository load/unload without an API key')
    .option('--drain-timeout <s>', 'on SIGTERM, how long to wait for in-flight requests', String(d.drainTimeoutMs / 1000))
    .option('--log-level <level>', 'pino log level', process.env.LOG_LEVEL ?? 'info')
    .action(async (flags: ServeFlags) => {
      const config = toConfig(flags);
      const log = createLogger(flags.logLevel);
      const server = await startServer(config, log);
      const stop = (signal: string) => {
        log.info({ signal }, 'shutting down');
        void server.drain().then(
          () => process.exit(0),
          (e: Error) => {
            log.error({ err: e.message }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
