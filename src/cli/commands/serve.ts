import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_FINETUNE_CONFIG, GATE_METRICS, finetuneConfig, type FinetuneConfig, type GateMetric } from '../../finetune/config';
import { deviceHelp, parseDevice } from '../../runtime/execution-providers';
import { DEFAULT_CONFIG, serveConfig, type ServeConfig } from '../../serve/config';
import { createLogger, startServer } from '../../serve/server';
import { collect, parseNumber } from '../format';

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
  finetune: boolean;
  readOnly?: boolean;
  watchInterval: string;
  finetuneApiKey: string[];
  finetuneAuth: boolean;
  finetuneDataFolder: string[];
  finetuneThreads: string;
  finetuneMetric: string;
  finetuneTolerance: string;
  finetuneReferenceCount: string;
}

function finetuneFlags(flags: ServeFlags): FinetuneConfig | undefined {
  if (!flags.finetune) return undefined;
  const envKeys = (process.env.TRIDENT_FINETUNE_API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  const metric = flags.finetuneMetric;
  if (!GATE_METRICS.includes(metric as GateMetric)) throw new Error(`--finetune-metric must be one of ${GATE_METRICS.join(', ')}, got "${metric}"`);
  const referenceCount = parseNumber(flags.finetuneReferenceCount, '--finetune-reference-count', { integer: true, min: 0 });
  return finetuneConfig({
    apiKeys: [...flags.finetuneApiKey, ...envKeys],
    authDisabled: !flags.finetuneAuth,
    dataFolders: flags.finetuneDataFolder.map((f) => path.resolve(f)),
    threads: parseNumber(flags.finetuneThreads, '--finetune-threads', { integer: true, min: 1 }),
    // Fine-tuning trains and evaluates on the device the models are served on.
    device: parseDevice(flags.device),
    gate: { metric: metric as GateMetric, tolerance: parseNumber(flags.finetuneTolerance, '--finetune-tolerance', { min: 0 }) },
    reference: referenceCount > 0 ? { count: referenceCount } : false,
  });
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
    finetune: flags.readOnly ? undefined : finetuneFlags(flags),
    readOnly: flags.readOnly === true,
    watchIntervalMs: parseNumber(flags.watchInterval, '--watch-interval', { min: 0.05 }) * 1000,
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
    .option('--device <name>', deviceHelp(), d.device)
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
    .option('--api-key <key>', 'API key for repository load/unload (repeatable; also TRIDENT_API_KEYS)', collect, [])
    .option('--no-auth', 'allow repository load/unload without an API key')
    .option('--drain-timeout <s>', 'on SIGTERM, how long to wait for in-flight requests', String(d.drainTimeoutMs / 1000))
    .option('--log-level <level>', 'pino log level', process.env.LOG_LEVEL ?? 'info')
    .option('--no-finetune', 'turn off fine-tuning through the server')
    .option('--read-only', 'a replica on a shared repository: no fine-tuning, no writes; picks up versions other servers promote')
    .option('--watch-interval <s>', 'with --read-only, how often to look for new versions', String(d.watchIntervalMs / 1000))
    .option('--finetune-api-key <key>', 'key for fine-tuning jobs, uploads and rollback (repeatable; also TRIDENT_FINETUNE_API_KEYS)', collect, [])
    .option('--no-finetune-auth', 'allow fine-tuning without a key')
    .option('--finetune-data-folder <dir>', 'a folder of labelled data that jobs may name instead of uploading (repeatable)', collect, [])
    .option('--finetune-threads <n>', 'ONNX Runtime threads of a fine-tuning job', String(DEFAULT_FINETUNE_CONFIG.threads))
    .option('--finetune-metric <metric>', `promotion gate metric: ${GATE_METRICS.join(', ')}`, DEFAULT_FINETUNE_CONFIG.gate.metric)
    .option('--finetune-tolerance <t>', 'a candidate may be this much worse on the gate metric and still be promoted', String(DEFAULT_FINETUNE_CONFIG.gate.tolerance))
    .option('--finetune-reference-count <n>', 'FashionLoc test canvases in the gate for Fashion-MNIST models (0: off)', '500')
    .action(async (flags: ServeFlags) => {
      const config = toConfig(flags);
      const log = createLogger(flags.logLevel);
      const server = await startServer(config, log);
      let stopping = false;
      const stop = (signal: string) => {
        // A terminal's Ctrl-C can arrive twice (to the process group, and forwarded by bin/trident.js).
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'shutting down');
        void server.drain().then(
          () => process.exit(0),
          (e: Error) => {
            log.error({ err: e.message }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
